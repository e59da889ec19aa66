// drag.js — moving and resizing booking bars on the planner grid with the mouse (issue #17).
// Why a module of its own: select.js chooses free slots; this changes existing bookings, with
// different rules (only bookings the viewer may change, only active ones; a started booking
// keeps its start and GPUs, so only its end can be dragged).
// - Press in a bar and drag sideways: the booking moves by whole slots of the view (hours in
//   the week view, days in the year view); a single-GPU booking also moves to the GPU row of
//   the same node under the pointer. Press on a bar's left or right edge: that end moves.
// - A dashed ghost shows the new placement while dragging; the bar itself stays where it is
//   until the server accepted the change (the caller refreshes the grid then). Escape cancels.
// - A press that does not move (a plain click) still opens the details panel: the drag only
//   begins past a few pixels, and the click that ends a drag is swallowed.
// Touch and keyboard users change bookings in the details panel's edit form (edit.js).
import { el } from './dom.js';
import { DAY, daysBetween, fmtDateTime, fromWall, parseIso, toIso, wall } from './time.js';
import { shownView } from './grid.js';
import { percentOf } from './views.js';

const DRAG_SLOP_PX = 4;
const GRIP_PX = 6;
const CLICK_AFTER_DROP_MS = 400;

/**
 * Let bars be dragged. `booking(id)` returns the booking (app.js's {id, node_id, gpu_ids,
 * start, end, ...}) when the viewer may change it, else null; `onMove(id, changes, booking)`
 * sends the change ({start, end, gpu_ids}: only what changed) and resolves when done (it
 * shows the outcome and refreshes the grid). Returns {active}: true from a press on a movable
 * bar until its release (the caller postpones renders meanwhile).
 */
export function attachBarDrag(table, { booking, onMove, announce = () => {} }) {
  let press = null; // {item, mode, x0, y0, started, plan, ghosts}
  let dropped = false; // a drag was cancelled (Escape) while the button was still down

  table.addEventListener('pointermove', (ev) => {
    if (press || ev.pointerType !== 'mouse') return;
    const bar = ev.target.closest?.('button.bar[data-booking]');
    if (!bar) return;
    const item = booking(Number(bar.dataset.booking));
    const mode = item ? gripAt(bar, ev, item, shownView(table)) : null;
    if (mode) bar.dataset.grip = mode;
    else delete bar.dataset.grip;
  });

  table.addEventListener('pointerdown', (ev) => {
    if (ev.pointerType !== 'mouse' || ev.button !== 0) return;
    const bar = ev.target.closest?.('button.bar[data-booking]');
    if (!bar || !table.contains(bar)) return;
    const item = booking(Number(bar.dataset.booking));
    const mode = item ? gripAt(bar, ev, item, shownView(table)) : null;
    if (!mode) return;
    press = { item, mode, x0: ev.clientX, y0: ev.clientY, started: false, plan: null, ghosts: [] };
  });

  document.addEventListener('pointermove', (ev) => {
    if (!press) return;
    if (ev.buttons === 0) { // released where no pointerup reached us (outside the window)
      cancel();
      return;
    }
    if (!press.started) {
      if (Math.hypot(ev.clientX - press.x0, ev.clientY - press.y0) < DRAG_SLOP_PX) return;
      press.started = true;
      sourceBars(table, press.item.id).forEach((bar) => bar.classList.add('drag-source'));
      document.body.classList.add(`dragging-${press.mode}`);
    }
    const plan = planAt(table, press, ev);
    if (press.plan && samePlan(plan, press.plan)) return;
    press.plan = plan;
    press.ghosts.forEach((ghost) => ghost.remove());
    press.ghosts = paint(table, press.item, plan);
    announce(`Booking #${press.item.id}: ${describe(plan)}`);
  });

  document.addEventListener('pointerup', () => {
    if (dropped) {
      dropped = false;
      swallowNextClick();
    }
    if (!press) return;
    const done = press;
    press = null;
    if (!done.started) return; // a click: the details panel opens as before
    swallowNextClick();
    endDrag(table, done);
    const changes = done.plan ? changesOf(done.item, done.plan) : null;
    if (!changes) {
      done.ghosts.forEach((ghost) => ghost.remove());
      return;
    }
    done.ghosts.forEach((ghost) => ghost.classList.add('pending'));
    Promise.resolve(onMove(done.item.id, changes, done.item))
      .finally(() => done.ghosts.forEach((ghost) => ghost.remove()));
  });

  const cancel = () => {
    const was = press;
    press = null;
    was.ghosts.forEach((ghost) => ghost.remove());
    endDrag(table, was);
  };
  document.addEventListener('pointercancel', () => { if (press) cancel(); });
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape' || !press?.started) return;
    ev.preventDefault();
    ev.stopPropagation();
    cancel();
    dropped = true; // the button is still down: its click must not open the details
    announce('Move cancelled.');
  }, { capture: true });

  return {
    get active() { return press !== null; }, // from the press on: no render moves the bar away
  };
}

/** What pressing at `ev` in `bar` drags: 'start', 'end', 'move', or null (nothing). */
function gripAt(bar, ev, item, view) {
  const start = parseIso(item.start);
  const end = parseIso(item.end);
  const now = Date.now();
  if (end <= now) return null;
  const rect = bar.getBoundingClientRect();
  const grip = Math.min(GRIP_PX, rect.width / 4);
  const started = start <= now;
  if (end <= view.end && ev.clientX >= rect.right - grip) return 'end';
  if (!started && start >= view.start && ev.clientX <= rect.left + grip) return 'start';
  return started ? null : 'move';
}

/** The new placement {start, end, gpuIds} for the pointer at `ev`, in whole slots. */
function planAt(table, press, ev) {
  const view = shownView(table);
  // The row of the bar as it is now (a refresh may have rebuilt it since the press).
  const track = table.querySelector(`tr.gpu-row[data-gpu="${CSS.escape(press.item.gpu_ids[0])}"] td.track`);
  const width = track?.getBoundingClientRect().width || 1;
  const share = (ev.clientX - press.x0) / width;
  // Whole slots: days in the year view (a column each), hours in the week view.
  let slots = Math.round(view.snap >= DAY ? share * daysBetween(view.start, view.end) : (share * (view.end - view.start)) / view.snap);
  let start = parseIso(press.item.start);
  let end = parseIso(press.item.end);
  let gpuIds = press.item.gpu_ids;
  if (press.mode === 'move') {
    start = shift(start, slots, view.snap);
    end = shift(end, slots, view.snap);
    const row = document.elementFromPoint(ev.clientX, ev.clientY)?.closest?.('tr.gpu-row');
    if (gpuIds.length === 1 && row?.dataset.node === press.item.node_id) gpuIds = [row.dataset.gpu];
  } else if (press.mode === 'end') {
    while (shift(end, slots, view.snap) <= start) slots += 1; // at least one slot long
    end = shift(end, slots, view.snap);
  } else {
    while (shift(start, slots, view.snap) >= end) slots -= 1;
    start = shift(start, slots, view.snap);
  }
  return { start, end, gpuIds };
}

/** `ms` moved by `slots` slots of `snap`; a day slot keeps the wall time (DST days differ). */
function shift(ms, slots, snap) {
  if (snap < DAY) return ms + slots * snap;
  const w = wall(ms);
  return fromWall(w.year, w.month, w.day + slots * Math.round(snap / DAY), w.hours, w.minutes, w.seconds);
}

function samePlan(a, b) {
  return a.start === b.start && a.end === b.end && a.gpuIds.join() === b.gpuIds.join();
}

/** The PATCH body for moving `item` to `plan` (only what changed), or null when nothing did. */
function changesOf(item, plan) {
  const changes = {};
  if (plan.start !== parseIso(item.start)) changes.start = toIso(plan.start);
  if (plan.end !== parseIso(item.end)) changes.end = toIso(plan.end);
  if (plan.gpuIds.join() !== item.gpu_ids.join()) changes.gpu_ids = plan.gpuIds;
  return Object.keys(changes).length ? changes : null;
}

function describe(plan) {
  return `${fmtDateTime(plan.start)} to ${fmtDateTime(plan.end)}, ${plan.gpuIds.join(', ')}`;
}

/** Dashed ghosts of `plan` in its GPU rows; the first carries the new times. */
function paint(table, item, plan) {
  const view = shownView(table);
  const left = Math.max(0, percentOf(view, plan.start));
  const right = Math.min(100, percentOf(view, plan.end));
  const ghosts = [];
  for (const gpu of plan.gpuIds) {
    const inner = table.querySelector(`tr.gpu-row[data-gpu="${CSS.escape(gpu)}"] .track-inner`);
    if (!inner || right <= left) continue;
    const ghost = el('div', {
      class: 'drag-ghost', 'aria-hidden': 'true', dataset: { booking: String(item.id) },
      style: { left: `${left}%`, width: `${right - left}%` },
    }, ghosts.length ? null : el('span', { class: 'drag-ghost-text' }, describeShort(plan)));
    inner.append(ghost);
    ghosts.push(ghost);
  }
  return ghosts;
}

function describeShort(plan) {
  return `${fmtDateTime(plan.start)} – ${fmtDateTime(plan.end)}`;
}

function sourceBars(table, id) {
  return table.querySelectorAll(`button.bar[data-booking="${Number(id)}"]`);
}

function endDrag(table, press) {
  sourceBars(table, press.item.id).forEach((bar) => bar.classList.remove('drag-source'));
  document.body.classList.remove(`dragging-${press.mode}`);
}

/** Drop the click that ends a drag (it would open the details panel). */
function swallowNextClick() {
  const swallow = (ev) => {
    ev.preventDefault();
    ev.stopPropagation();
  };
  window.addEventListener('click', swallow, { capture: true, once: true });
  setTimeout(() => window.removeEventListener('click', swallow, { capture: true }), CLICK_AFTER_DROP_MS);
}
