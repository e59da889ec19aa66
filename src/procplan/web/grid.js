// grid.js — the week grid: a <table> with one <tbody> per node, one row per GPU and one
// cell per UTC day. Each booking is a bar positioned and sized by its hours inside the day
// cell, on its own lane, with its label inside the bar or, when the bar is narrow, beside it.
// Running jobs are drawn on the same rows as hatched, outlined "job bars" (read-only), and
// GPUs with foreign processes get a "⚠ in use" badge in their row header.
// Also handles choosing a slot: click / drag over cells of one node's GPUs, or Enter.
import { el } from './dom.js';
import { DAY, HOUR, fmtDateTime, fmtDay, parseIso, todayIndex } from './time.js';

const PRIORITIES = ['low', 'medium', 'high'];
const STATUSES = ['active', 'completed', 'cancelled'];
const INSIDE_MIN_PERCENT = 40; // bars this wide always hold their own label
const SCALE_HOURS = [0, 6, 12, 18];

/**
 * Rebuild header and bodies from a /api/v1/calendar payload; `folded` holds node ids, `jobs`
 * the running jobs (/api/v1/jobs objects), `nodes` the /api/v1/nodes list (foreign GPUs).
 */
export function renderGrid(table, calendar, monday, now,
  { folded = new Set(), user = '', jobs = [], nodes = [] } = {}) {
  const today = todayIndex(monday, now);
  const ctx = { monday, today, now, jobsByGpu: jobsByGpu(jobs, now), usage: gpuUsage(nodes) };
  table.tHead.replaceChildren(headRow(monday, today));
  table.querySelectorAll('tbody').forEach((body) => body.remove());
  for (const node of calendar.nodes) table.append(nodeBody(node, ctx, folded.has(node.id)));
  if (!calendar.nodes.length) {
    table.append(el('tbody', {}, el('tr', {}, el('td', { colspan: 8, class: 'empty' }, 'No nodes to show.'))));
  }
  updateNowLine(table, now);
  markMine(table, user);
}

/** Fold or unfold one node's GPU rows (no re-render; the caller remembers the choice). */
export function setFolded(table, nodeId, folded) {
  for (const body of table.tBodies) {
    if (body.dataset.node !== nodeId) continue;
    body.classList.toggle('folded', folded);
    body.querySelector('button.fold')?.setAttribute('aria-expanded', String(!folded));
  }
}

/** Give the bars of `user`'s bookings and jobs the class "mine" (highlight / "my bookings" filter). */
export function markMine(table, user) {
  for (const bar of table.querySelectorAll('.bar[data-user], .job-bar[data-user], .side-label[data-user]')) {
    bar.classList.toggle('mine', user !== '' && bar.dataset.user === user);
  }
}

/** `node` itself while it is in the page, else the same GPU × day cell of a newer render. */
export function sameCell(table, node) {
  if (!node || node.isConnected || !node.matches?.('td.day')) return node?.isConnected ? node : null;
  const gpu = node.parentElement?.dataset.gpu;
  return [...table.querySelectorAll('td.day')].find((td) => td.parentElement.dataset.gpu === gpu
    && td.dataset.dayStart === node.dataset.dayStart) ?? null;
}

/** Move the red "now" marker inside today's cells (cheap; runs on every refresh tick). */
export function updateNowLine(table, now) {
  for (const line of table.querySelectorAll('.now-line')) {
    const dayStart = Number(line.closest('td').dataset.dayStart);
    line.style.left = `${((now - dayStart) / DAY) * 100}%`;
  }
}

function headRow(monday, today) {
  const row = el('tr', {}, el('th', { scope: 'col', class: 'gpu-col' }, 'GPU'));
  for (let d = 0; d < 7; d++) {
    const scale = el('span', { class: 'scale', 'aria-hidden': 'true' },
      SCALE_HOURS.map((h) => el('span', { style: { left: `${(h / 24) * 100}%` } }, String(h).padStart(2, '0'))));
    row.append(el('th', { scope: 'col', class: d === today ? 'day-head today' : 'day-head' },
      el('span', { class: 'day-name' }, fmtDay(monday + d * DAY)),
      d === today ? el('span', { class: 'visually-hidden' }, ' (today)') : null,
      scale));
  }
  return row;
}

/** GPU id -> [{job, start, end}] of the running jobs; an open-ended job runs "forever". */
function jobsByGpu(jobs, now) {
  const byGpu = new Map();
  for (const job of jobs) {
    const start = parseIso(job.started_at);
    if (!Number.isFinite(start)) continue;
    const limited = typeof job.time_limit_s === 'number' && job.time_limit_s > 0;
    // A job past its limit is still running: draw it at least up to now.
    const end = limited ? Math.max(start + job.time_limit_s * 1000, now) : Number.POSITIVE_INFINITY;
    for (const gpuId of job.allocated_gpus || []) {
      if (!byGpu.has(gpuId)) byGpu.set(gpuId, []);
      byGpu.get(gpuId).push({ job, start, end, limited });
    }
  }
  return byGpu;
}

/** GPU id -> {users, flags} for GPUs that are foreign or flagged in /api/v1/nodes. */
function gpuUsage(nodes) {
  const usage = new Map();
  for (const node of nodes) {
    for (const gpu of node.gpus || []) {
      const flags = Array.isArray(gpu.flags) ? gpu.flags : [];
      if (!gpu.foreign && !flags.length) continue;
      const procs = Array.isArray(gpu.processes) ? gpu.processes : [];
      const outside = procs.filter((p) => p.kind !== 'job');
      const users = [...new Set((outside.length ? outside : procs).map((p) => p.user || '?'))];
      usage.set(gpu.id, { foreign: Boolean(gpu.foreign), flags, users });
    }
  }
  return usage;
}

function nodeBody(node, ctx, folded) {
  const { monday, today } = ctx;
  const kinds = countKinds(node.gpus);
  const body = el('tbody', { class: folded ? 'folded' : undefined, dataset: { node: node.id } },
    el('tr', { class: 'node-row' },
      el('th', { scope: 'rowgroup', colspan: 8 },
        el('button', {
          type: 'button', class: 'fold', 'aria-expanded': String(!folded),
          'aria-label': `GPUs of ${node.name || node.id}`, dataset: { fold: node.id },
        }, el('span', { class: 'fold-icon', 'aria-hidden': 'true' })),
        el('span', { class: 'node-name' }, node.name || node.id),
        el('span', { class: 'node-meta' }, ` ${node.id} · ${kinds}`))));
  for (const gpu of node.gpus) body.append(gpuRow(node, gpu, ctx));
  return body;
}

function countKinds(gpus) {
  const counts = new Map();
  for (const gpu of gpus) counts.set(gpu.kind, (counts.get(gpu.kind) || 0) + 1);
  return [...counts].map(([kind, n]) => `${n} × ${kind}`).join(', ') || 'no GPUs';
}

function gpuRow(node, gpu, ctx) {
  const { monday, today } = ctx;
  const usage = ctx.usage.get(gpu.id);
  const row = el('tr', { class: 'gpu-row', dataset: { node: node.id, gpu: gpu.id } },
    el('th', { scope: 'row', class: usage ? 'gpu-name gpu-foreign' : 'gpu-name', title: gpu.id },
      `GPU ${gpu.index}`, el('span', { class: 'gpu-kind' }, gpu.kind), usage ? foreignBadge(usage) : null));
  const jobs = ctx.jobsByGpu.get(gpu.id) || [];
  for (let d = 0; d < 7; d++) row.append(dayCell(gpu, jobs, monday + d * DAY, d === today));
  return row;
}

const FLAG_TEXT = { unbooked_use: 'in use without a booking or job', idle_booking: 'booked but idle' };

function foreignBadge({ foreign, flags, users }) {
  const who = users.length ? `processes of ${users.join(', ')}` : 'processes';
  const lines = [
    foreign ? `Foreign ${who} on this GPU` : `GPU ${who}`,
    ...flags.map((f) => FLAG_TEXT[f] || f),
  ];
  const text = lines.join('; ');
  return el('span', { class: 'foreign-badge', title: text },
    el('span', { 'aria-hidden': 'true' }, '⚠ in use'),
    el('span', { class: 'visually-hidden' }, ` (${text})`));
}

function dayCell(gpu, jobs, dayStart, isToday) {
  const segments = gpu.claims.map((claim) => segment(claim, dayStart)).filter(Boolean);
  segments.sort((a, b) => a.left - b.left);
  const jobSegments = jobs.map((j) => jobSegment(j, dayStart)).filter(Boolean);
  jobSegments.sort((a, b) => a.left - b.left);
  const cell = el('div', { class: 'cell' }, segments.map(lane), jobSegments.map(jobLane));
  if (isToday) cell.append(el('div', { class: 'now-line', 'aria-hidden': 'true' }));
  return el('td', {
    class: isToday ? 'day today' : 'day', tabindex: 0,
    'aria-describedby': 'cell-hint', dataset: { dayStart: String(dayStart) },
  }, cell);
}

/** The part of `claim` inside [dayStart, dayStart + 1 day) in percent of the day, or null. */
function segment(claim, dayStart) {
  const start = parseIso(claim.start);
  const end = parseIso(claim.end);
  const dayEnd = dayStart + DAY;
  if (!(start < dayEnd && end > dayStart)) return null;
  const from = Math.max(start, dayStart);
  const to = Math.min(end, dayEnd);
  return { claim, start, end, left: ((from - dayStart) / DAY) * 100, width: ((to - from) / DAY) * 100 };
}

function jobSegment({ job, start, end, limited }, dayStart) {
  const dayEnd = dayStart + DAY;
  if (!(start < dayEnd && end > dayStart)) return null;
  const from = Math.max(start, dayStart);
  const to = Math.min(end, dayEnd);
  return { job, start, end, limited, left: ((from - dayStart) / DAY) * 100, width: ((to - from) / DAY) * 100 };
}

/** A running job's lane: a hatched, outlined bar "job 17 · alice" (click: details, read-only). */
function jobLane({ job, start, end, limited, left, width }) {
  const text = `job ${job.id} · ${job.user}`;
  const until = limited ? `until ${fmtDateTime(end)} UTC` : 'no time limit';
  const name = `Running job ${job.id}${job.name ? ` "${job.name}"` : ''} — ${job.user}, `
    + `started ${fmtDateTime(start)} UTC, ${until}`;
  const inside = width >= Math.min(INSIDE_MIN_PERCENT, Math.max(left, 100 - left - width));
  const dataset = { job: String(job.id), user: job.user };
  const bar = el('button', {
    type: 'button', class: 'job-bar', title: name, 'aria-label': name, dataset,
    style: { left: `${left}%`, width: `${width}%` },
  }, el('span', { class: 'bar-text' }, text));
  const row = el('div', { class: 'lane job-lane' }, bar);
  if (!inside) row.append(sideLabel(text, left, width, dataset));
  return row;
}

function lane({ claim, start, end, left, width }) {
  const priority = PRIORITIES.includes(claim.priority) ? claim.priority : 'unknown';
  const status = STATUSES.includes(claim.status) ? claim.status : 'unknown';
  const text = claim.label || '(no label)';
  const name = `${text} — ${claim.user}, ${claim.priority} priority, ${claim.status}, `
    + `${fmtDateTime(start)} to ${fmtDateTime(end)} UTC`;
  const inside = width >= Math.min(INSIDE_MIN_PERCENT, Math.max(left, 100 - left - width));
  const bar = el('button', {
    type: 'button', class: `bar p-${priority} st-${status}`, title: name, 'aria-label': name,
    dataset: { booking: String(claim.booking_id), user: claim.user },
    style: { left: `${left}%`, width: `${width}%` },
  }, inside ? el('span', { class: 'bar-text' }, text) : null);
  const row = el('div', { class: 'lane' }, bar);
  if (!inside) row.append(sideLabel(text, left, width, { booking: String(claim.booking_id), user: claim.user }));
  return row;
}

/** A narrow bar's label, on the side of the bar with more room in the day. */
function sideLabel(text, left, width, dataset) {
  const after = 100 - left - width >= left;
  const style = after
    ? { left: `calc(${left + width}% + 3px)`, right: '0' }
    : { left: '0', right: `calc(${100 - left}% + 3px)`, textAlign: 'right' };
  return el('span', { class: 'side-label', 'aria-hidden': 'true', dataset, style }, text);
}

/**
 * Slot choosing on the table (bound once; survives body rebuilds). `onSelect` receives
 * {nodeId, gpuIds, start, end}; `onBooking` a booking id; `onJob` a job id (string);
 * `onFold` (nodeId, fold). Returns {active} for the caller to postpone re-rendering during a drag.
 */
export function attachInteractions(table, { onSelect, onBooking, onJob = () => {}, onFold }) {
  let drag = null;
  table.addEventListener('click', (ev) => {
    const fold = ev.target.closest('[data-fold]');
    if (fold) {
      onFold(fold.dataset.fold, fold.getAttribute('aria-expanded') === 'true');
      return;
    }
    const hit = ev.target.closest('[data-booking]');
    if (hit) {
      onBooking(Number(hit.dataset.booking));
      return;
    }
    const job = ev.target.closest('[data-job]');
    if (job) onJob(job.dataset.job);
  });
  table.addEventListener('pointerdown', (ev) => {
    const point = pointAt(ev, ev.target);
    if (!point || ev.button !== 0 || ev.target.closest('[data-booking], [data-job]')) return;
    ev.preventDefault();
    drag = { anchor: point, current: point };
    paint(table, drag);
  });
  document.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    const point = pointAt(ev, document.elementFromPoint(ev.clientX, ev.clientY));
    if (point && point.row.parentElement === drag.anchor.row.parentElement) {
      drag.current = point;
      paint(table, drag);
    }
  });
  document.addEventListener('pointerup', () => {
    if (!drag) return;
    const chosen = selection(drag);
    drag = null;
    clearPaint(table);
    onSelect(chosen);
  });
  document.addEventListener('pointercancel', () => {
    drag = null;
    clearPaint(table);
  });
  table.addEventListener('keydown', (ev) => {
    const td = ev.target;
    if (!td.matches('td.day') || (ev.key !== 'Enter' && ev.key !== ' ')) return;
    ev.preventDefault();
    const start = Number(td.dataset.dayStart);
    onSelect({ nodeId: td.parentElement.dataset.node, gpuIds: [td.parentElement.dataset.gpu], start, end: start + DAY });
  });
  return { get active() { return drag !== null; } };
}

/** The GPU row and the hour under the pointer, or null outside day cells. */
function pointAt(ev, target) {
  const td = target?.closest?.('td.day');
  if (!td) return null;
  const rect = td.getBoundingClientRect();
  const hour = Math.min(23, Math.max(0, Math.floor(((ev.clientX - rect.left) / rect.width) * 24)));
  return { row: td.parentElement, time: Number(td.dataset.dayStart) + hour * HOUR };
}

function selection({ anchor, current }) {
  return {
    nodeId: anchor.row.dataset.node,
    gpuIds: rowsBetween(anchor.row, current.row).map((row) => row.dataset.gpu),
    start: Math.min(anchor.time, current.time),
    end: Math.max(anchor.time, current.time) + HOUR,
  };
}

function rowsBetween(a, b) {
  const rows = [...a.parentElement.querySelectorAll('tr.gpu-row')];
  const [i, j] = [rows.indexOf(a), rows.indexOf(b)].sort((x, y) => x - y);
  return rows.slice(i, j + 1);
}

function paint(table, drag) {
  clearPaint(table);
  const { start, end } = selection(drag);
  for (const row of rowsBetween(drag.anchor.row, drag.current.row)) {
    for (const td of row.querySelectorAll('td.day')) {
      const dayStart = Number(td.dataset.dayStart);
      const from = Math.max(start, dayStart);
      const to = Math.min(end, dayStart + DAY);
      if (from >= to) continue;
      td.firstElementChild.append(el('div', {
        class: 'selection', 'aria-hidden': 'true',
        style: { left: `${((from - dayStart) / DAY) * 100}%`, width: `${((to - from) / DAY) * 100}%` },
      }));
    }
  }
}

function clearPaint(table) {
  table.querySelectorAll('.selection').forEach((node) => node.remove());
}
