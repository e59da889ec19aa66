// views.js — the planner's two time scales, as plain data: the hour view (one week, a column
// per day, bookings placed to the hour) and the day view (one UTC year, a column per day, like
// ProcPlan's original planner). A view says which instants it shows, how a pointer position
// snaps to a slot, how it is named and navigated, and builds its own table head and columns.
import { el } from './dom.js';
import { DAY, HOUR, WEEK, fmtDay, mondayOf, todayIndex } from './time.js';

export const DAY_PX = 24; // width of one day column in the day (year) view
export const GPU_COL_PX = 150;
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
  'September', 'October', 'November', 'December'];
const WEEKDAY_LETTERS = ['M', 'T', 'W', 'T', 'F', 'S', 'S'];
const SCALE_HOURS = [0, 6, 12, 18];

/** First instant of the UTC year holding `ms`. */
export function yearStart(ms) {
  return Date.UTC(new Date(ms).getUTCFullYear(), 0, 1);
}

/**
 * The view of `kind` ('week' or 'year') holding the instant `at`:
 * {kind, start, end, days, snap (ms a pointer snaps to), key (changes when the shown range does)}.
 */
export function makeView(kind, at) {
  if (kind === 'year') {
    const start = yearStart(at);
    const end = Date.UTC(new Date(start).getUTCFullYear() + 1, 0, 1);
    return { kind, start, end, days: Math.round((end - start) / DAY), snap: DAY, key: `year:${start}` };
  }
  const start = mondayOf(at);
  return { kind: 'week', start, end: start + WEEK, days: 7, snap: HOUR, key: `week:${start}` };
}

/** The same kind of view, `steps` weeks or years later (negative: earlier). */
export function shiftView(view, steps) {
  if (view.kind === 'year') {
    const year = new Date(view.start).getUTCFullYear() + steps;
    return makeView('year', Date.UTC(year, 0, 1));
  }
  return makeView('week', view.start + steps * WEEK);
}

/** "Mon 23 Nov – Sun 29 Nov 2026" or "2026", for the header. */
export function viewLabel(view) {
  if (view.kind === 'year') return String(new Date(view.start).getUTCFullYear());
  const sunday = view.start + 6 * DAY;
  return `${fmtDay(view.start)} – ${fmtDay(sunday)} ${new Date(sunday).getUTCFullYear()}`;
}

/** Position of instant `ms` in the view, in percent of its width (may fall outside 0–100). */
export function percentOf(view, ms) {
  return ((ms - view.start) / (view.end - view.start)) * 100;
}

/** The slot start under a pointer at fraction `x` (0–1) of a track's width. */
export function slotAt(view, x) {
  const clamped = Math.min(Math.max(x, 0), 0.999999);
  const at = view.start + clamped * (view.end - view.start);
  return view.start + Math.floor((at - view.start) / view.snap) * view.snap;
}

/** Index of the day holding `now` in the view, or -1. */
export function todayColumn(view, now) {
  return view.kind === 'year' ? dayIndex(view, now) : todayIndex(view.start, now);
}

function dayIndex(view, now) {
  const index = Math.floor((now - view.start) / DAY);
  return index >= 0 && index < view.days ? index : -1;
}

/** Column widths: a <colgroup> (fixed day width in the year view, equal shares in the week view). */
export function colgroup(view) {
  const cols = [el('col', { class: 'gpu-col-w', style: { width: `${GPU_COL_PX}px` } })];
  const width = view.kind === 'year' ? `${DAY_PX}px` : undefined;
  for (let d = 0; d < view.days; d++) cols.push(el('col', { style: width ? { width } : undefined }));
  return el('colgroup', {}, cols);
}

/** Width of the whole table in px for the year view (it scrolls), or null (fluid week view). */
export function tableWidth(view) {
  return view.kind === 'year' ? GPU_COL_PX + view.days * DAY_PX : null;
}

/** The <thead> rows of the view; today's column is marked (and named for screen readers). */
export function headRows(view, now) {
  const today = todayColumn(view, now);
  return view.kind === 'year' ? yearHead(view, today) : [weekHead(view, today)];
}

function weekHead(view, today) {
  const row = el('tr', {}, el('th', { scope: 'col', class: 'gpu-col' }, 'GPU'));
  for (let d = 0; d < 7; d++) {
    const scale = el('span', { class: 'scale', 'aria-hidden': 'true' },
      SCALE_HOURS.map((h) => el('span', { style: { left: `${(h / 24) * 100}%` } }, String(h).padStart(2, '0'))));
    row.append(el('th', { scope: 'col', class: d === today ? 'day-head today' : 'day-head' },
      el('span', { class: 'day-name' }, fmtDay(view.start + d * DAY)),
      d === today ? el('span', { class: 'visually-hidden' }, ' (today)') : null,
      scale));
  }
  return row;
}

/** Two rows: the months (each spanning its days) and the days (number over weekday letter). */
function yearHead(view, today) {
  const year = new Date(view.start).getUTCFullYear();
  const months = el('tr', { class: 'months' },
    el('th', { scope: 'col', class: 'gpu-col', rowspan: 2 }, 'GPU'));
  for (let m = 0; m < 12; m++) {
    const days = Math.round((Date.UTC(year, m + 1, 1) - Date.UTC(year, m, 1)) / DAY);
    months.append(el('th', { scope: 'colgroup', colspan: days, class: 'month-head' },
      el('span', { class: 'month-name' }, `${MONTHS[m]} ${year}`)));
  }
  const days = el('tr', { class: 'days' });
  for (let d = 0; d < view.days; d++) {
    const date = new Date(view.start + d * DAY);
    const weekday = (date.getUTCDay() + 6) % 7;
    const classes = ['day-head'];
    if (weekday >= 5) classes.push('weekend');
    if (date.getUTCDate() === 1) classes.push('month-start');
    if (d === today) classes.push('today');
    days.append(el('th', {
      scope: 'col', class: classes.join(' '), title: fmtDay(date.getTime()),
      dataset: { day: String(d) },
    },
    el('span', { class: 'day-num' }, String(date.getUTCDate())),
    el('span', { class: 'day-letter', 'aria-hidden': 'true' }, WEEKDAY_LETTERS[weekday]),
    el('span', { class: 'visually-hidden' }, ` ${fmtDay(date.getTime())}${d === today ? ' (today)' : ''}`)));
  }
  return [months, days];
}

/**
 * Inline style for a GPU row's track: the day (and in the week view 6-hour) lines and, in the
 * year view, the weekend shading, drawn as background gradients instead of thousands of cells.
 */
export function trackBackground(view) {
  if (view.kind === 'week') return {};
  const weekday = (new Date(view.start).getUTCDay() + 6) % 7; // Monday 0
  // The 7-day shading pattern starts on a Monday: shift it back to the Monday before 1 Jan.
  return { backgroundPosition: `0 0, ${-weekday * DAY_PX}px 0` };
}

/** Where the year view scrolls so that `ms` shows a little right of the GPU column. */
export function scrollLeftFor(view, ms, visibleWidth) {
  if (view.kind !== 'year') return 0;
  const x = Math.floor((ms - view.start) / DAY) * DAY_PX;
  return Math.max(0, x - Math.max(0, (visibleWidth - GPU_COL_PX) / 4));
}
