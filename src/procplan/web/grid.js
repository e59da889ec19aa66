// grid.js — the planner grid: a <table> with one <tbody> per node and one row per GPU. A GPU
// row is a name cell and one "track" cell spanning every day column of the view; bookings are
// bars placed in it by their exact start and end (to the minute), stacked on lanes only where
// they overlap; running jobs are hatched "job bars" on lanes of their own; the day lines and
// weekends are the track's background. That keeps a year × 320 GPUs at a few elements per
// booking instead of a cell per GPU and day. Rows whose data did not change are kept as they
// are on a refresh (no flicker; focus stays).
import { el } from './dom.js';
import { watchMonthLabels } from './headfit.js';
import { fmtWhen, parseIso } from './time.js';
import {
  colgroup, headRows, percentOf, tableWidth, todayColumn, trackBackground,
} from './views.js';

const PRIORITIES = ['low', 'medium', 'high'];
const STATUSES = ['active', 'completed', 'cancelled'];
const LANE_STEP_PX = 20; // lane height (18 px, --lane-h) plus its gap
const CHAR_PX = 6.6;
const LABEL_INSIDE_PX = 56; // a bar this wide keeps its label inside ("drag bo…"), cut short if need be
const FOREIGN_ROW_PX = 37; // a GPU name with the "⚠ in use" badge under it     // rough width of a 12 px character, to decide where a label fits
const FLAG_TEXT = { unbooked_use: 'in use without a booking or job', idle_booking: 'booked but idle', idle_warned: 'idle: release pending' };

const rendered = new WeakMap(); // table -> {viewKey, headKey, bodies: Map(nodeId -> {sig, body, rows})}

/**
 * Draw `calendar` (a /api/v1/calendar payload) in `view` (views.js). `jobs` are the running
 * /api/v1/jobs objects, `nodes` the /api/v1/nodes list (foreign / flagged GPUs), `trackPx` the
 * width of a track in px (to decide which labels fit inside their bars).
 */
export function renderGrid(table, calendar, view, now,
  { folded = new Set(), user = '', jobs = [], nodes = [], trackPx = 1000 } = {}) {
  let memo = rendered.get(table);
  if (!memo || memo.viewKey !== view.key) {
    memo = { viewKey: view.key, headKey: '', bodies: new Map(), user };
    rendered.set(table, memo);
    table.querySelectorAll('tbody').forEach((body) => body.remove());
    observers.get(table)?.observer.disconnect();
    observers.delete(table);
  }
  const today = todayColumn(view, now);
  const headKey = `${view.key}|${today}`;
  if (memo.headKey !== headKey) {
    memo.headKey = headKey;
    drawHead(table, view, now);
  }
  memo.user = user;
  const ctx = {
    view, today, now, trackPx, memo, jobsByGpu: jobsByGpu(jobs, now), usage: gpuUsage(nodes),
    table, fillWhenSeen: (inner, fill) => watch(table, inner, fill),
  };
  const bodies = calendar.nodes.map((node) => nodeBody(memo, node, ctx));
  for (const id of [...memo.bodies.keys()]) {
    if (!calendar.nodes.some((n) => n.id === id)) drop(table, memo.bodies.get(id).body);
  }
  memo.bodies = new Map(calendar.nodes.map((node, i) => [node.id, bodies[i]]));
  placeBodies(table, bodies.map((b) => b.body), view);
  for (const { body } of bodies) body.classList.toggle('folded', folded.has(body.dataset.node));
  syncFoldButtons(table);
  updateNowLine(table, now);
  markMine(table, user);
}

function drawHead(table, view, now) {
  table.classList.remove('view-week', 'view-year');
  table.classList.add(`view-${view.kind}`);
  const width = tableWidth(view);
  table.style.width = width ? `${width}px` : '';
  table.style.minWidth = width ? `${width}px` : '';
  Object.assign(table.dataset, { start: String(view.start), end: String(view.end), snap: String(view.snap) });
  table.querySelector('colgroup')?.remove();
  table.tHead.before(colgroup(view));
  table.tHead.replaceChildren(...headRows(view, now));
  if (view.kind === 'year') watchMonthLabels(table);
}

function placeBodies(table, bodies, view) {
  table.querySelector('tbody.empty-body')?.remove();
  let anchor = table.tHead;
  for (const body of bodies) {
    if (anchor.nextElementSibling !== body) anchor.after(body);
    anchor = body;
  }
  if (!bodies.length) {
    table.append(el('tbody', { class: 'empty-body' },
      el('tr', {}, el('td', { colspan: view.days + 1, class: 'empty' }, 'No nodes to show.'))));
  }
}

/** {start, end, snap} of the view the table shows (written by the render, read by select.js). */
export function shownView(table) {
  const d = table.dataset;
  return { start: Number(d.start), end: Number(d.end), snap: Number(d.snap) };
}

/** Fold or unfold one node's GPU rows (no re-render; the caller remembers the choice). */
export function setFolded(table, nodeId, folded) {
  for (const body of table.tBodies) {
    if (body.dataset.node === nodeId) body.classList.toggle('folded', folded);
  }
  syncFoldButtons(table);
}

function syncFoldButtons(table) {
  for (const body of table.tBodies) {
    body.querySelector('button.fold')?.setAttribute('aria-expanded', String(!body.classList.contains('folded')));
  }
}

/** Give the bars of `user`'s bookings and jobs the class "mine" (highlight / "my bookings" filter). */
export function markMine(table, user) {
  const memo = rendered.get(table);
  if (memo) memo.user = user;
  markMineIn(table, user);
}

function markMineIn(root, user) {
  for (const bar of root.querySelectorAll('.bar[data-user], .job-bar[data-user], .side-label[data-user]')) {
    bar.classList.toggle('mine', user !== '' && bar.dataset.user === user);
  }
}

/** Stop watching the unfilled tracks of a row or body that left the grid (or is leaving). */
function drop(table, root) {
  const entry = observers.get(table);
  if (entry) for (const inner of root.querySelectorAll('.track-inner:not(.filled)')) entry.observer.unobserve(inner);
  root.remove();
}

const observers = new WeakMap(); // table -> {observer, fills: WeakMap(inner -> fill)}

/**
 * Run `fill` once `inner` is within a screen of the grid's visible area. Rows are as tall as
 * their lanes before they are filled, so scrolling and the scroll bar are right from the start.
 */
function watch(table, inner, fill) {
  let entry = observers.get(table);
  if (!entry) {
    const fills = new WeakMap();
    const observer = new IntersectionObserver((seen) => {
      for (const { target, isIntersecting } of seen) {
        if (!isIntersecting) continue;
        observer.unobserve(target);
        const run = fills.get(target);
        fills.delete(target);
        run?.();
      }
    }, { root: table.closest('.grid-wrap'), rootMargin: '50% 0px' });
    entry = { observer, fills };
    observers.set(table, entry);
  }
  entry.fills.set(inner, fill);
  entry.observer.observe(inner);
}

/** `node` while it is in the page, else the same GPU's track of a newer render (or null). */
export function sameTrack(table, node) {
  if (!node) return null;
  if (node.isConnected) return node;
  const gpu = node.closest?.('tr')?.dataset.gpu ?? node.dataset?.gpu;
  return gpu === undefined ? null : table.querySelector(`tr.gpu-row[data-gpu="${CSS.escape(gpu)}"] td.track`);
}

/** Move the red "now" marker (cheap; runs on every refresh tick). */
export function updateNowLine(table, now) {
  const view = shownView(table);
  for (const line of table.querySelectorAll('.now-line')) line.style.left = `${percentOf(view, now)}%`;
}

/** GPU id -> [{job, start, end, limited}] of the running jobs; an open-ended job runs "forever". */
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

/** GPU id -> {foreign, flags, users} for GPUs that are foreign or flagged in /api/v1/nodes. */
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

/** The node's <tbody>, reusing the cached one and its unchanged rows. */
function nodeBody(memo, node, ctx) {
  const sig = JSON.stringify([node.name, node.gpus.map((g) => [g.id, g.kind])]);
  const cached = memo.bodies.get(node.id);
  const body = cached && cached.sig === sig ? cached.body : newBody(node, ctx);
  if (cached && cached.body !== body) drop(ctx.table, cached.body);
  const oldRows = cached && cached.body === body ? cached.rows : new Map();
  const rows = new Map();
  let anchor = body.rows[0]; // the node row
  for (const gpu of node.gpus) {
    const rowSig = gpuSig(gpu, ctx);
    const old = oldRows.get(gpu.id);
    // A row replaced on screen is filled at once (no blank frame); others when seen.
    const eager = Boolean(old?.row.querySelector('.track-inner.filled'));
    const row = old && old.sig === rowSig ? old.row : gpuRow(node, gpu, ctx, eager);
    if (old && old.row !== row) {
      old.row.replaceWith(row);
      drop(ctx.table, old.row);
    }
    if (anchor.nextElementSibling !== row) anchor.after(row);
    anchor = row;
    rows.set(gpu.id, { sig: rowSig, row });
  }
  return { sig, body, rows };
}

/** Everything a GPU row shows, as a string: the row is rebuilt only when this changes. */
function gpuSig(gpu, ctx) {
  const jobs = (ctx.jobsByGpu.get(gpu.id) || []).map(({ job, start, end }) => [job.id, job.name, job.user, start, end]);
  return JSON.stringify([ctx.today, ctx.trackPx, gpu.index, gpu.kind, gpu.claims, jobs, ctx.usage.get(gpu.id) ?? null]);
}

function newBody(node, ctx) {
  return el('tbody', { dataset: { node: node.id } },
    el('tr', { class: 'node-row' },
      el('th', { scope: 'rowgroup', colspan: ctx.view.days + 1 },
        el('span', { class: 'node-label' },
          el('button', {
            type: 'button', class: 'fold', 'aria-expanded': 'true',
            'aria-label': `GPUs of ${node.name || node.id}`, dataset: { fold: node.id },
          }, el('span', { class: 'fold-icon', 'aria-hidden': 'true' })),
          el('span', { class: 'node-name' }, node.name || node.id),
          el('span', { class: 'node-meta' }, ` ${node.id} · ${countKinds(node.gpus)}`)))));
}

function countKinds(gpus) {
  const counts = new Map();
  for (const gpu of gpus) counts.set(gpu.kind, (counts.get(gpu.kind) || 0) + 1);
  return [...counts].map(([kind, n]) => `${n} × ${kind}`).join(', ') || 'no GPUs';
}

function gpuRow(node, gpu, ctx, eager = false) {
  const usage = ctx.usage.get(gpu.id);
  const name = `GPU ${gpu.index} (${gpu.kind}) of ${node.name || node.id}`;
  // The node's row names the model when all its GPUs share it; a row names it only when they
  // differ (it did not fit beside "GPU 0" and was cut off), with the full name on hover.
  const mixed = node.gpus.some((other) => other.kind !== gpu.kind);
  return el('tr', { class: 'gpu-row', dataset: { node: node.id, gpu: gpu.id } },
    el('th', { scope: 'row', class: usage ? 'gpu-name gpu-foreign' : 'gpu-name', title: `${gpu.id}: ${gpu.kind}` },
      `GPU ${gpu.index}`, mixed ? el('span', { class: 'gpu-kind' }, gpu.kind) : null, usage ? foreignBadge(usage) : null),
    el('td', {
      class: 'track', colspan: ctx.view.days, tabindex: -1, 'aria-label': name,
      'aria-describedby': 'cell-hint',
    }, trackInner(gpu, ctx, eager)));
}

function foreignBadge({ foreign, flags, users }) {
  const who = users.length ? `processes of ${users.join(', ')}` : 'processes';
  const text = [foreign ? `Foreign ${who} on this GPU` : `GPU ${who}`, ...flags.map((f) => FLAG_TEXT[f] || f)].join('; ');
  return el('span', { class: 'foreign-badge', title: text },
    el('span', { 'aria-hidden': 'true' }, '⚠ in use'),
    el('span', { class: 'visually-hidden' }, ` (${text})`));
}

/**
 * The positioned layer of a track, sized for its lanes at once; its content (today's column,
 * booking and job bars, the now line) is built when the row comes near the visible part of
 * the grid (see `fillWhenSeen`): a year of 320 GPUs is tens of thousands of bars, of which a
 * screen shows a few hundred.
 */
function trackInner(gpu, ctx, eager) {
  const { view } = ctx;
  const bookings = stack(gpu.claims.map((claim) => span(view, parseIso(claim.start), parseIso(claim.end), { claim })));
  const jobs = stack((ctx.jobsByGpu.get(gpu.id) || []).map((j) => span(view, j.start, j.end, j)));
  const lanes = Math.max(1, bookings.lanes + jobs.lanes);
  // A row whose name cell carries the "in use" badge is taller: the track fills it.
  const height = Math.max(lanes * LANE_STEP_PX + 8, ctx.usage.has(gpu.id) ? FOREIGN_ROW_PX : 0);
  const inner = el('div', { class: 'track-inner', style: { ...trackBackground(view), height: `${height}px` } });
  const fill = () => fillTrack(inner, bookings, jobs, ctx);
  if (eager) fill();
  else ctx.fillWhenSeen(inner, fill);
  return inner;
}

function fillTrack(inner, bookings, jobs, ctx) {
  const { view, today } = ctx;
  const parts = [];
  if (today >= 0) {
    parts.push(el('div', {
      class: 'today-col', 'aria-hidden': 'true',
      style: { left: `${(today / view.days) * 100}%`, width: `${100 / view.days}%` },
    }));
  }
  for (const item of bookings.items) parts.push(...bookingBar(item, ctx));
  for (const item of jobs.items) parts.push(...jobBar({ ...item, lane: item.lane + bookings.lanes }, ctx));
  if (today >= 0) parts.push(el('div', { class: 'now-line', 'aria-hidden': 'true', style: { left: `${percentOf(view, ctx.now)}%` } }));
  inner.prepend(...parts); // before a keyboard cursor or selection already painted in the row
  inner.classList.add('filled');
  markMineIn(inner, ctx.memo.user);
}

/** `extra` with the part of [start, end) inside the view, in percent; null when outside. */
function span(view, start, end, extra) {
  if (!(start < view.end && end > view.start)) return null;
  const left = Math.max(0, percentOf(view, start));
  const right = Math.min(100, percentOf(view, end));
  return { ...extra, start, end, left, width: right - left };
}

/** Put spans on lanes (first lane free at their left edge); note the room after each. */
function stack(spans) {
  const items = spans.filter(Boolean).sort((a, b) => a.left - b.left);
  const ends = [];
  const lastOnLane = [];
  for (const item of items) {
    let lane = ends.findIndex((end) => end <= item.left + 1e-9);
    if (lane < 0) lane = ends.length;
    const before = lastOnLane[lane];
    item.lane = lane;
    item.roomBefore = item.left - (before ? before.left + before.width : 0);
    if (before) before.roomAfter = item.left - (before.left + before.width);
    ends[lane] = item.left + item.width;
    lastOnLane[lane] = item;
  }
  for (const item of lastOnLane) item.roomAfter = 100 - (item.left + item.width);
  return { items, lanes: ends.length };
}

function bookingBar(item, ctx) {
  const { claim, start, end } = item;
  const priority = PRIORITIES.includes(claim.priority) ? claim.priority : 'unknown';
  const status = STATUSES.includes(claim.status) ? claim.status : 'unknown';
  const text = claim.label || '(no label)';
  const name = `${text} — ${claim.user}, ${claim.priority} priority, ${claim.status}, `
    + `${fmtWhen(start)} to ${fmtWhen(end)}`;
  const dataset = { booking: String(claim.booking_id), user: claim.user };
  return placed(item, ctx, text, dataset, el('button', {
    type: 'button', class: `bar p-${priority} st-${status}`, title: name, 'aria-label': name, dataset,
  }));
}

/** A running job: a hatched, outlined bar "job 17 · alice" (click: read-only details). */
function jobBar(item, ctx) {
  const { job, start, end, limited } = item;
  const text = `job ${job.id} · ${job.user}`;
  const until = limited ? `until ${fmtWhen(end)}` : 'no time limit';
  const name = `Running job ${job.id}${job.name ? ` "${job.name}"` : ''} — ${job.user}, `
    + `started ${fmtWhen(start)}, ${until}`;
  const dataset = { job: String(job.id), user: job.user };
  const bar = el('button', {
    type: 'button', class: limited ? 'job-bar' : 'job-bar open-ended', title: name, 'aria-label': name, dataset,
  });
  // The time it has run is drawn solid; from now on to its time limit it is projected (dashed);
  // with no time limit the projected part fades out at the view's end ("open-ended").
  const nowAt = (percentOf(ctx.view, ctx.now) - item.left) / item.width;
  if (nowAt < 1) {
    const from = Math.max(0, nowAt) * 100;
    bar.append(el('span', { class: 'job-projected', 'aria-hidden': 'true', style: { left: `${from}%` } }));
  }
  return placed(item, ctx, text, dataset, bar);
}

/**
 * Position `bar` on its lane with its label inside when it fits, else beside it (on the side
 * with more free room on the lane), else only in the tooltip and accessible name.
 */
function placed(item, ctx, text, dataset, bar) {
  const pxPerPercent = ctx.trackPx / 100;
  const need = text.length * CHAR_PX + 10;
  const top = `${item.lane * LANE_STEP_PX + 4}px`;
  Object.assign(bar.style, { left: `${item.left}%`, width: `${item.width}%`, top });
  const inside = item.width * pxPerPercent;
  const after = item.roomAfter * pxPerPercent >= need || item.roomAfter >= item.roomBefore;
  const room = (after ? item.roomAfter : item.roomBefore) * pxPerPercent;
  // Inside when the label fits or the bar shows a good part of it; else beside when
  // there is more room there ("res…" in a short bar said nothing); else inside, cut short.
  // The tooltip always has all of it.
  if (inside >= Math.min(need, LABEL_INSIDE_PX) || (room < Math.min(need, inside + 24) && inside >= 40)) {
    bar.append(el('span', { class: 'bar-text' }, text));
    return [bar];
  }
  if (room < 24) return [bar];
  const style = after
    ? { left: `calc(${item.left + item.width}% + 3px)`, width: `calc(${item.roomAfter}% - 6px)`, top }
    : { left: `calc(${item.left - item.roomBefore}% + 3px)`, width: `calc(${item.roomBefore}% - 6px)`, top, textAlign: 'right' };
  return [bar, el('span', { class: 'side-label', 'aria-hidden': 'true', dataset, style }, text)];
}
