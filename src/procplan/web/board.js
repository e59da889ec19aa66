// board.js — the live cluster board: per node its state, per GPU its readings, holder,
// processes and flags, and a 3-hour utilization sparkline from the history API. Refreshes every
// 5 s in place: a GPU row is rebuilt only when its JSON changed. All text goes through
// createElement/textContent (dom.js's el), never innerHTML.
import { el } from './dom.js';
import { fetchJson, fmtDuration, fmtInstant, fmtMb, fmtNum, poll, setStatus, syncRows, updatedText } from './live.js';
import { showSession } from './session.js';
import { mountZoneSwitch } from './zone.js';

const HISTORY_MS = 60_000;       // history is written per closed minute: once a minute is enough
const HISTORY_SPAN_S = 3 * 3600; // the sparkline covers the last 3 hours
const SVG = 'http://www.w3.org/2000/svg';
const FLAG_TEXT = { unbooked_use: 'unbooked use', idle_booking: 'booked but idle', idle_warned: 'idle: release pending' };
const STATE_TEXT = { online: 'online', offline: 'offline', unmanaged: 'no agent' };
const $ = (id) => document.getElementById(id);

const board = $('board');
const history = new Map(); // node id -> {at: ms fetched, series: Map(gpu id -> points)}

async function refresh() {
  try {
    const { data } = await fetchJson('api/v1/nodes');
    render(data);
    setStatus($('status'), null, updatedText());
    loadHistory(data.nodes); // in the background; sparklines fill in when it answers
  } catch (err) {
    setStatus($('status'), err);
  }
}

function render(data) {
  const s = data.summary;
  $('summary').textContent = [
    `${s.nodes} nodes`, `${s.online} online`, `${s.offline} offline`,
    ...(s.unmanaged ? [`${s.unmanaged} without agent`] : []),
    `${s.gpus} GPUs`, `${s.gpus_in_use} in use`, `${s.foreign_gpus} foreign`, `${s.flagged_gpus} flagged`,
  ].join(' · ');
  const old = new Map([...board.children].map((card) => [card.dataset.node, card]));
  data.nodes.forEach((node, i) => {
    let card = old.get(node.id);
    if (!card) card = nodeCard(node);
    old.delete(node.id);
    updateCard(card, node);
    if (board.children[i] !== card) board.insertBefore(card, board.children[i] || null);
  });
  for (const card of old.values()) card.remove();
  if (!data.nodes.length && !board.querySelector('.empty')) {
    board.append(el('p', { class: 'empty' }, 'No nodes yet: start `procplan agent` on a GPU machine.'));
  } else if (data.nodes.length) {
    board.querySelector(':scope > .empty')?.remove();
  }
}

function nodeCard(node) {
  const titleId = `node-${node.id}-title`.replace(/[^A-Za-z0-9_-]/g, '_');
  const head = el('tr', {},
    el('th', { scope: 'col', class: 'num' }, 'GPU'), el('th', { scope: 'col' }, 'Model'),
    el('th', { scope: 'col' }, 'Utilization'), el('th', { scope: 'col' }, 'Memory'),
    el('th', { scope: 'col', class: 'num' }, 'Temp'), el('th', { scope: 'col', class: 'num' }, 'Power'),
    el('th', { scope: 'col' }, 'Last 3 h'), el('th', { scope: 'col' }, 'Held by'),
    el('th', { scope: 'col' }, 'Processes'), el('th', { scope: 'col' }, 'Flags'));
  return el('section', { class: 'node-card', dataset: { node: node.id }, 'aria-labelledby': titleId },
    el('div', { class: 'node-head' },
      el('h3', { id: titleId }, node.name || node.id),
      el('span', { class: 'state' }),
      el('span', { class: 'sched', hidden: true }),
      el('span', { class: 'node-meta' })),
    el('p', { class: 'read-error', hidden: true }),
    el('div', { class: 'table-wrap' },
      el('table', { class: 'data gpu-table' },
        el('caption', { class: 'visually-hidden' }, `GPUs of node ${node.name || node.id}`),
        el('thead', {}, head), el('tbody'))));
}

function updateCard(card, node) {
  card.dataset.state = node.state;
  card.querySelector('h3').textContent = node.name || node.id;
  const state = card.querySelector('.state');
  state.className = `state state-${node.state}`;
  state.textContent = STATE_TEXT[node.state] || node.state;
  // ADR 0020: a drain is shown with its reason (as text: the reason is an admin's input).
  const sched = card.querySelector('.sched');
  const drained = node.sched_state === 'draining' || node.sched_state === 'drained';
  card.dataset.sched = node.sched_state || '';
  sched.hidden = !drained;
  sched.className = `sched sched-${drained ? node.sched_state : 'none'}`;
  sched.textContent = drained ? (node.reason ? `${node.sched_state}: ${node.reason}` : node.sched_state) : '';
  sched.title = drained && node.drained_by ? `drained by ${node.drained_by} ${fmtInstant(node.drained_at)}` : '';
  card.querySelector('.node-meta').textContent = nodeMeta(node).join(' · ');
  const hover = [node.hostname ? `agent on host ${node.hostname}` : '', node.last_seen ? `last seen ${fmtInstant(node.last_seen)}` : ''];
  card.querySelector('.node-meta').title = hover.filter(Boolean).join('; ');
  const readError = card.querySelector('.read-error');
  readError.hidden = !node.read_error;
  readError.textContent = node.read_error ? `GPU read error: ${node.read_error}` : '';
  const tbody = card.querySelector('tbody');
  const rows = syncRows(tbody, node.gpus, (g) => g.id, (g) => JSON.stringify(g), gpuRow);
  rows.forEach((row, i) => drawSpark(row, node.id, node.gpus[i].id));
}

/**
 * The node's facts under its name. The agent's host name is shown only as "host …" where it
 * says something: a simulated (demo) node's agent runs on whatever machine hosts the demo, and
 * its name (e.g. "vm") read as the node's own name.
 */
function nodeMeta(node) {
  const meta = [];
  const version = node.agent?.version ?? node.agent?.agent_version;
  if (node.agent?.reader === 'fake') meta.push('simulated GPUs');
  else if (node.hostname && node.hostname !== node.name && node.hostname !== node.id) meta.push(`host ${node.hostname}`);
  if (node.address) meta.push(node.address);
  meta.push(`${node.gpu_count} GPU${node.gpu_count === 1 ? '' : 's'}`);
  if (node.last_seen) meta.push(`last seen ${fmtDuration(node.last_seen_age_s)} ago`);
  if (version) meta.push(`agent ${version}`);
  return meta;
}

function gpuRow(gpu) {
  const flags = [...gpu.flags.map((f) => badge(f, FLAG_TEXT[f] || f)), gpu.foreign ? badge('foreign', 'foreign') : null];
  return el('tr', { class: gpu.flags.length ? 'flagged' : '', dataset: { gpu: gpu.id } },
    el('td', { class: 'num gpu-index' }, String(gpu.index)),
    el('td', { class: 'gpu-model', title: gpu.uuid || '' }, gpu.model || gpu.kind || '—'),
    el('td', { class: 'util' }, meter(gpu.utilization_pct, 100, gpu.utilization_pct === null ? '—' : `${Math.round(gpu.utilization_pct)} %`)),
    el('td', { class: 'mem' }, meter(gpu.memory_used_mb, gpu.memory_total_mb || gpu.memory_mb,
      gpu.memory_used_mb === null ? '—' : `${fmtMb(gpu.memory_used_mb)} / ${fmtMb(gpu.memory_total_mb || gpu.memory_mb)}`)),
    el('td', { class: 'num temp' }, fmtNum(gpu.temperature_c, '°C')),
    el('td', { class: 'num power' }, fmtNum(gpu.power_w, 'W')),
    el('td', { class: 'spark' }),
    el('td', { class: 'holder' }, holder(gpu.holder)),
    el('td', { class: 'procs' }, processes(gpu.processes)),
    el('td', { class: 'flags' }, flags.some(Boolean) ? flags : el('span', { class: 'muted' }, '—')));
}

function badge(kind, text) {
  return el('span', { class: `badge badge-${kind}` }, text);
}

function meter(value, max, text) {
  const pct = value === null || value === undefined || !max ? 0 : Math.min(100, Math.max(0, (100 * value) / max));
  const level = pct >= 90 ? 'high' : pct >= 50 ? 'mid' : 'low';
  return el('div', { class: 'meter-cell' },
    el('span', { class: `meter meter-${level}`, 'aria-hidden': 'true' },
      el('span', { class: 'meter-fill', style: { width: `${pct.toFixed(1)}%` } })),
    el('span', { class: 'meter-text' }, text));
}

function holder(h) {
  if (!h) return el('span', { class: 'muted' }, 'free');
  if (h.kind === 'job') {
    return el('span', { class: 'holder-job' },
      el('span', { class: 'tag tag-job' }, 'job'), ` #${h.job_id} `,
      el('strong', {}, h.user), h.name ? el('span', { class: 'muted' }, ` ${h.name}`) : null);
  }
  return el('span', { class: 'holder-booking' },
    el('span', { class: 'tag tag-booking' }, 'booking'), ' ', el('strong', {}, h.user),
    h.label ? el('span', { class: 'holder-line muted' }, h.label) : null,
    h.end ? el('span', { class: 'holder-line muted' }, `until ${fmtInstant(h.end)}`) : null);
}

function processes(list) {
  if (!list.length) return el('span', { class: 'muted' }, '—');
  return el('ul', { class: 'proc-list' }, list.map((p) => el('li', { class: `proc proc-${p.kind}` },
    el('strong', { class: 'proc-user' }, p.user || '?'), ' ',
    el('code', { class: 'proc-cmd', title: `pid ${p.pid}: ${p.command}` }, p.command || `pid ${p.pid}`), ' ',
    el('span', { class: 'muted' }, fmtMb(p.used_memory_mb)),
    p.kind !== 'job' ? el('span', { class: `tag tag-${p.kind}` }, p.kind) : el('span', { class: 'tag tag-job' }, `job #${p.job_id}`))));
}

// ---- sparklines --------------------------------------------------------------------------

async function loadHistory(nodes) {
  const now = Date.now();
  const due = nodes.filter((n) => n.state !== 'unmanaged' && (now - (history.get(n.id)?.at ?? 0)) >= HISTORY_MS);
  await Promise.all(due.map(async (node) => {
    history.set(node.id, { at: now, series: history.get(node.id)?.series ?? new Map(), version: 0 });
    const end = Math.floor(now / 1000);
    const query = new URLSearchParams({
      metric: 'utilization', step: '60',
      start: new Date((end - HISTORY_SPAN_S) * 1000).toISOString(), end: new Date(end * 1000).toISOString(),
    });
    try {
      const { data } = await fetchJson(`api/v1/nodes/${encodeURIComponent(node.id)}/history?${query}`);
      history.set(node.id, { at: now, series: new Map(data.series.map((s) => [s.gpu, s.points])), version: now });
    } catch {
      /* no history (yet): the sparkline stays empty and the next minute tries again */
    }
    const card = [...board.children].find((c) => c.dataset.node === node.id);
    card?.querySelectorAll('tbody tr').forEach((row) => drawSpark(row, node.id, row.dataset.gpu));
  }));
}

function drawSpark(row, nodeId, gpuId) {
  const entry = history.get(nodeId);
  const version = String(entry?.version ?? 'none');
  const cell = row.querySelector('td.spark');
  if (!cell || cell.dataset.version === version) return;
  cell.dataset.version = version;
  cell.replaceChildren(sparkline(entry?.series.get(gpuId) ?? []));
}

/** An inline SVG of utilization 0–100 %; gaps (null) break the line; empty: a dashed baseline. */
function sparkline(points) {
  const w = 96;
  const h = 26;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('width', String(w));
  svg.setAttribute('height', String(h));
  svg.setAttribute('class', 'sparkline');
  svg.setAttribute('role', 'img');
  const values = points.filter((p) => p[1] !== null);
  const title = document.createElementNS(SVG, 'title');
  title.textContent = values.length
    ? `Utilization, last 3 h: avg ${Math.round(values.reduce((a, p) => a + p[1], 0) / values.length)} %, max ${Math.round(Math.max(...values.map((p) => p[1])))} %`
    : 'No utilization history yet';
  svg.setAttribute('aria-label', title.textContent);
  svg.append(title);
  const base = document.createElementNS(SVG, 'line');
  Object.entries({ x1: 0, x2: w, y1: h - 1, y2: h - 1, class: values.length ? 'spark-base' : 'spark-empty' })
    .forEach(([k, v]) => base.setAttribute(k, String(v)));
  svg.append(base);
  if (!values.length) return svg;
  const end = Date.now() / 1000;
  const start = end - HISTORY_SPAN_S;
  const x = (t) => ((t - start) / HISTORY_SPAN_S) * w;
  const y = (v) => h - 1 - (Math.min(100, Math.max(0, v)) / 100) * (h - 3);
  let run = [];
  const flush = () => {
    if (run.length === 1) run.push([run[0][0] + 1.5, run[0][1]]); // one point: a short dash
    if (run.length) {
      const line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('points', run.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(' '));
      line.setAttribute('class', 'spark-line');
      svg.append(line);
    }
    run = [];
  };
  for (const [t, v] of points) {
    if (v === null) flush();
    else run.push([x(t), y(v)]);
  }
  flush();
  return svg;
}

mountZoneSwitch(); // a switch reloads the page: every time is drawn again
showSession();
poll(refresh);
