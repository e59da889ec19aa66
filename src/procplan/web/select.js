// select.js — choosing a slot on the planner grid, three ways:
// - mouse: press on a track and drag across hours (week view) or days (year view) and across
//   GPU rows of one node;
// - touch: a tap chooses that GPU's day (dragging scrolls the grid, as a phone user expects);
// - keyboard: one GPU track is in the tab order (roving tabindex); arrows move a day cursor
//   (Up/Down change GPU), Shift+arrows widen the selection, Enter or Space books it, Home/End
//   and PageUp/PageDown jump, Escape drops the selection.
// The grid itself only reports {nodeId, gpuIds, start, end}; app.js opens the booking form.
import { el } from './dom.js';
import { attachBarDrag } from './drag.js';
import { DAY, addDays, fmtDay, slotEnd, startOfDay } from './time.js';
import { shownView } from './grid.js';
import { percentOf, slotAt } from './views.js';

const TAP_SLOP_PX = 10;
const CLICK_AFTER_TAP_MS = 500;


/**
 * Bind the handlers once (they survive re-renders). Callbacks: `onSelect(selection)`,
 * `onBooking(id)`, `onJob(id string)`, `onFold(nodeId, fold)`, `announce(text)`; with
 * `onMove(id, changes)` bars of the bookings `movable(id)` returns can be dragged (drag.js).
 * Returns {active, restore()}: `active` is true during a drag (the caller postpones renders),
 * `restore(hadFocus)` puts the tab stop, focus and keyboard cursor back after a render.
 */
export function attachInteractions(table, {
  onSelect, onBooking, onJob = () => {}, onFold, announce = () => {}, movable = () => null, onMove = null,
}) {
  let drag = null;
  // Bars of bookings the viewer may change can be moved and resized (drag.js).
  const bars = onMove ? attachBarDrag(table, { booking: movable, onMove, announce }) : { active: false };
  let tap = null;
  const keys = { gpu: null, time: null, anchor: null }; // keyboard cursor (GPU, day), selection anchor

  table.addEventListener('click', (ev) => {
    const fold = ev.target.closest('[data-fold]');
    if (fold) return onFold(fold.dataset.fold, fold.getAttribute('aria-expanded') === 'true');
    const hit = ev.target.closest('[data-booking]');
    if (hit) return onBooking(Number(hit.dataset.booking));
    const job = ev.target.closest('[data-job]');
    if (job) onJob(job.dataset.job);
    return undefined;
  });

  table.addEventListener('pointerdown', (ev) => {
    const point = pointAt(table, ev, ev.target);
    if (!point || ev.button !== 0 || ev.target.closest('[data-booking], [data-job]')) return;
    if (ev.pointerType !== 'mouse') {
      tap = { id: ev.pointerId, x: ev.clientX, y: ev.clientY, point };
      return; // no preventDefault: a touch drag scrolls the grid
    }
    ev.preventDefault();
    // The keyboard cursor follows the pointer, so that focusing the track scrolls nothing.
    Object.assign(keys, { gpu: point.row.dataset.gpu, time: clampDay(table, point.time), anchor: null });
    point.row.querySelector('td.track').focus({ preventScroll: true });
    drag = { anchor: point, current: point };
    paintRange(table, rangeOf(drag.anchor, drag.current, shownView(table).snap));
  });
  document.addEventListener('pointermove', (ev) => {
    if (tap && ev.pointerId === tap.id && Math.hypot(ev.clientX - tap.x, ev.clientY - tap.y) > TAP_SLOP_PX) tap = null;
    if (!drag) return;
    const point = pointAt(table, ev, document.elementFromPoint(ev.clientX, ev.clientY));
    if (point && point.row.parentElement === drag.anchor.row.parentElement) {
      drag.current = point;
      paintRange(table, rangeOf(drag.anchor, drag.current, shownView(table).snap));
    }
  });
  document.addEventListener('pointerup', (ev) => {
    if (tap && ev.pointerId === tap.id) {
      const chosen = { row: tap.point.row, time: clampDay(table, tap.point.time) };
      tap = null;
      swallowNextClick(); // the tap's own click would land on the dialog opened under the finger
      onSelect(toSelection(rangeOf(chosen, chosen, DAY)));
      return;
    }
    if (!drag) return;
    const range = rangeOf(drag.anchor, drag.current, shownView(table).snap);
    drag = null;
    clearPaint(table);
    onSelect(toSelection(range));
  });
  document.addEventListener('pointercancel', () => {
    tap = null;
    drag = null;
    clearPaint(table);
  });

  table.addEventListener('focusin', (ev) => {
    const td = ev.target.closest?.('td.track');
    if (!td) return;
    setTabStop(table, td);
    const gpu = td.parentElement.dataset.gpu;
    if (keys.gpu !== gpu) keys.anchor = keys.anchor && sameNode(table, keys.anchor.gpu, gpu) ? keys.anchor : null;
    keys.gpu = gpu;
    keys.time = clampDay(table, keys.time ?? defaultDay(table));
    showCursor(table, keys, announce, false);
  });
  table.addEventListener('focusout', (ev) => {
    if (!table.contains(ev.relatedTarget)) hideCursor(table);
  });
  table.addEventListener('keydown', (ev) => {
    const td = ev.target;
    if (!td.matches?.('td.track')) return;
    if (onKey(table, ev, keys, onSelect)) {
      ev.preventDefault();
      showCursor(table, keys, announce, true);
    }
  });

  return {
    get active() { return drag !== null || bars.active; },
    /** After a render: the tab stop back on the cursor's GPU; focus too if a track had it. */
    restore(hadFocus) {
      const td = rowOf(table, keys.gpu)?.querySelector('td.track') ?? table.querySelector('tr.gpu-row td.track');
      if (!td) return;
      setTabStop(table, td);
      if (keys.time !== null) keys.time = clampDay(table, keys.time); // the view may have changed
      const lost = !document.activeElement || document.activeElement === document.body;
      if (hadFocus && lost) td.focus({ preventScroll: true });
      if (document.activeElement === td) showCursor(table, keys, announce, false);
    },
  };
}

/**
 * Drop the click that a browser sends after a tap: it is dispatched where the finger was, and
 * by then the booking dialog lies there (its Book button could be hit and book at once).
 */
function swallowNextClick() {
  const swallow = (ev) => {
    ev.preventDefault();
    ev.stopPropagation();
  };
  window.addEventListener('click', swallow, { capture: true, once: true });
  setTimeout(() => window.removeEventListener('click', swallow, { capture: true }), CLICK_AFTER_TAP_MS);
}

/** Handle one key on a track; true when it was ours (the cursor moved or a slot was chosen). */
function onKey(table, ev, keys, onSelect) {
  const view = shownView(table);
  const step = { ArrowLeft: -1, ArrowRight: 1, PageUp: -7, PageDown: 7 }[ev.key]; // days
  if (ev.key === 'Enter' || ev.key === ' ') {
    const anchor = keys.anchor ?? { gpu: keys.gpu, time: keys.time };
    keys.anchor = null;
    clearPaint(table);
    onSelect(toSelection(rangeOf(pointOf(table, anchor), pointOf(table, keys), DAY)));
    return true;
  }
  if (ev.key === 'Escape') {
    if (!keys.anchor) return false;
    keys.anchor = null;
    return true;
  }
  let time = keys.time;
  let gpu = keys.gpu;
  if (step) time = addDays(time, step);
  else if (ev.key === 'Home') time = view.start;
  else if (ev.key === 'End') time = addDays(view.end, -1);
  else if (ev.key === 'ArrowUp' || ev.key === 'ArrowDown') {
    const next = neighbourRow(table, gpu, ev.key === 'ArrowUp' ? -1 : 1, ev.shiftKey);
    if (!next) return true;
    gpu = next.dataset.gpu;
  } else return false;
  if (ev.shiftKey && !keys.anchor) keys.anchor = { gpu: keys.gpu, time: keys.time };
  if (!ev.shiftKey) keys.anchor = null;
  keys.time = clampDay(table, time);
  if (gpu !== keys.gpu) {
    keys.gpu = gpu;
    rowOf(table, gpu).querySelector('td.track').focus(); // focusin keeps keys as set here
  }
  return true;
}

/** The visible GPU row above / below; with `sameNodeOnly` it stays inside the node. */
function neighbourRow(table, gpu, dir, sameNodeOnly) {
  const current = rowOf(table, gpu);
  const rows = [...(sameNodeOnly ? current.parentElement : table).querySelectorAll('tr.gpu-row')]
    .filter((row) => !row.parentElement.classList.contains('folded'));
  const i = rows.indexOf(current);
  return i < 0 ? null : rows[i + dir] ?? null;
}

function showCursor(table, keys, announce, speak) {
  hideCursor(table);
  const row = rowOf(table, keys.gpu);
  if (!row) return;
  const view = shownView(table);
  const cursor = el('div', {
    class: 'kbd-cursor', 'aria-hidden': 'true', style: spanStyle(view, keys.time, addDays(keys.time, 1)),
  });
  row.querySelector('.track-inner').append(cursor);
  if (speak) cursor.scrollIntoView({ block: 'nearest', inline: 'nearest' }); // moved by a key
  let text = `${row.querySelector('td.track').getAttribute('aria-label')}, ${fmtDay(keys.time)}`;
  if (keys.anchor) {
    const range = rangeOf(pointOf(table, keys.anchor), pointOf(table, keys), DAY);
    paintRange(table, range);
    const days = Math.round((range.end - range.start) / DAY);
    text += `; selected ${days} day${days === 1 ? '' : 's'} × ${range.rows.length} GPU${range.rows.length === 1 ? '' : 's'}`;
  } else clearPaint(table);
  if (speak) announce(text);
}

function hideCursor(table) {
  table.querySelectorAll('.kbd-cursor').forEach((node) => node.remove());
}

function setTabStop(table, td) {
  for (const other of table.querySelectorAll('td.track[tabindex="0"]')) if (other !== td) other.tabIndex = -1;
  td.tabIndex = 0;
}

function rowOf(table, gpu) {
  return gpu === null ? null : table.querySelector(`tr.gpu-row[data-gpu="${CSS.escape(gpu)}"]`);
}

function sameNode(table, gpuA, gpuB) {
  return rowOf(table, gpuA)?.dataset.node === rowOf(table, gpuB)?.dataset.node;
}

/** Now when it is in the view, else the view's start (clampDay makes it a day). */
function defaultDay(table) {
  const view = shownView(table);
  const now = Date.now();
  return now >= view.start && now < view.end ? now : view.start; // clampDay floors it
}

function clampDay(table, time) {
  const view = shownView(table);
  return Math.min(Math.max(startOfDay(time), view.start), addDays(view.end, -1)); // a day of the display zone
}

function pointOf(table, { gpu, time }) {
  return { row: rowOf(table, gpu), time };
}

/** The GPU row and slot start under the pointer, or null outside tracks. */
function pointAt(table, ev, target) {
  const td = target?.closest?.('td.track');
  if (!td || !table.contains(td)) return null;
  const rect = td.getBoundingClientRect();
  return { row: td.parentElement, time: slotAt(shownView(table), (ev.clientX - rect.left) / rect.width) };
}

/** {rows, start, end} between two points; `unit` is the slot length (hour or day: a calendar day). */
function rangeOf(a, b, unit) {
  return { rows: rowsBetween(a.row, b.row), start: Math.min(a.time, b.time), end: slotEnd(Math.max(a.time, b.time), unit) };
}

function toSelection({ rows, start, end }) {
  return { nodeId: rows[0].dataset.node, gpuIds: rows.map((row) => row.dataset.gpu), start, end };
}

function rowsBetween(a, b) {
  if (a.parentElement !== b.parentElement) return [a];
  const rows = [...a.parentElement.querySelectorAll('tr.gpu-row')];
  const [i, j] = [rows.indexOf(a), rows.indexOf(b)].sort((x, y) => x - y);
  return rows.slice(i, j + 1);
}

function paintRange(table, { rows, start, end }) {
  clearPaint(table);
  const style = spanStyle(shownView(table), start, end);
  for (const row of rows) {
    row.querySelector('.track-inner').append(el('div', { class: 'selection', 'aria-hidden': 'true', style }));
  }
}

/** left / width of [start, end) in a track of `view`. */
function spanStyle(view, start, end) {
  const left = percentOf(view, start);
  return { left: `${left}%`, width: `${percentOf(view, end) - left}%` };
}

function clearPaint(table) {
  table.querySelectorAll('.selection').forEach((node) => node.remove());
}
