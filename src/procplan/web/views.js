// views.js — the planner's two time scales, as plain data: the hour view (one week, a column
// per day, bookings placed to the hour) and the day view (one year, a column per day, like
// ProcPlan's original planner). Days are calendar days of the display zone (time.js): a DST
// change day is 23 or 25 hours long yet one column wide, so instants are placed piecewise, day
// by day (`percentOf`), and bars, day lines and the now line agree. A view says which instants
// it shows, how a pointer position snaps to a slot, how it is named and navigated, and builds
// its own table head and columns.
import { el } from './dom.js';
import {
  DAY, HOUR, addDays, daysBetween, fmtDay, fromWall, mondayOf, todayIndex, usingUtc, wall,
} from './time.js';

export const DAY_PX = 24; // width of one day column in the day (year) view
export const GPU_COL_PX = 150;
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August',
  'September', 'October', 'November', 'December'];
const WEEKDAY_LETTERS = ['M', 'T', 'W', 'T', 'F', 'S', 'S'];
const SCALE_HOURS = [0, 6, 12, 18];

/** First instant (1 January 00:00) of the year holding `ms`. */
export function yearStart(ms) {
  return fromWall(wall(ms).year, 0, 1);
}

/**
 * The view of `kind` ('week' or 'year') holding the instant `at`:
 * {kind, start, end, days, snap (ms a pointer snaps to), key (changes when the shown range does)}.
 */
export function makeView(kind, at) {
  if (kind === 'year') {
    const start = yearStart(at);
    const end = fromWall(wall(start).year + 1, 0, 1);
    return { kind, start, end, days: daysBetween(start, end), snap: DAY, key: `year:${start}:${zoneKey()}` };
  }
  const start = mondayOf(at);
  return { kind: 'week', start, end: addDays(start, 7), days: 7, snap: HOUR, key: `week:${start}:${zoneKey()}` };
}

/** Part of a view's key: the same start drawn in another zone has other day columns. */
function zoneKey() {
  return usingUtc() ? 'utc' : 'local';
}

/** The same kind of view, `steps` weeks or years later (negative: earlier). */
export function shiftView(view, steps) {
  if (view.kind === 'year') return makeView('year', fromWall(wall(view.start).year + steps, 0, 1));
  return makeView('week', addDays(view.start, 7 * steps));
}

/** "Mon 23 Nov – Sun 29 Nov 2026" or "2026", for the header. */
export function viewLabel(view) {
  if (view.kind === 'year') return String(wall(view.start).year);
  const sunday = addDays(view.start, 6);
  return `${fmtDay(view.start)} – ${fmtDay(sunday)} ${wall(sunday).year}`;
}

const boundsCache = new Map(); // "start|end|utc" -> the day starts of a view, and its end

/** The start of each day of the view ({start, end} suffice), then its end: days + 1 instants. */
export function dayBounds(view) {
  const key = `${view.start}|${view.end}|${usingUtc()}`;
  let bounds = boundsCache.get(key);
  if (!bounds) {
    const days = Math.max(1, daysBetween(view.start, view.end));
    bounds = Array.from({ length: days }, (_, d) => addDays(view.start, d));
    bounds.push(view.end);
    if (boundsCache.size > 16) boundsCache.clear();
    boundsCache.set(key, bounds);
  }
  return bounds;
}

/**
 * Position of instant `ms` in the view, in percent of its width (may fall outside 0–100): each
 * day column holds its own day, however long (outside the view days count 24 h).
 */
export function percentOf(view, ms) {
  const bounds = dayBounds(view);
  const days = bounds.length - 1;
  if (ms <= bounds[0]) return ((ms - bounds[0]) / DAY / days) * 100;
  if (ms >= bounds[days]) return ((days + (ms - bounds[days]) / DAY) / days) * 100;
  let lo = 0;
  let hi = days - 1;
  while (lo < hi) { // the last day starting at or before ms
    const mid = (lo + hi + 1) >> 1;
    if (bounds[mid] <= ms) lo = mid;
    else hi = mid - 1;
  }
  return ((lo + (ms - bounds[lo]) / (bounds[lo + 1] - bounds[lo])) / days) * 100;
}

/** The slot start under a pointer at fraction `x` (0–1) of a track's width. */
export function slotAt(view, x) {
  const bounds = dayBounds(view);
  const days = bounds.length - 1;
  const at = Math.min(Math.max(x, 0), 0.999999) * days;
  const d = Math.floor(at);
  if (view.snap >= DAY) return bounds[d];
  const since = (at - d) * (bounds[d + 1] - bounds[d]);
  return bounds[d] + Math.floor(since / view.snap) * view.snap;
}

/** Index of the day holding `now` in the view, or -1. */
export function todayColumn(view, now) {
  return view.kind === 'year' ? dayIndex(view, now) : todayIndex(view.start, now);
}

function dayIndex(view, now) {
  return now >= view.start && now < view.end ? daysBetween(view.start, now) : -1;
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
      el('span', { class: 'day-name' }, fmtDay(dayBounds(view)[d])),
      d === today ? el('span', { class: 'visually-hidden' }, ' (today)') : null,
      scale));
  }
  return row;
}

/** A month's label, longest first ("March 2026|March|Mar|M"): headfit.js shows one that fits. */
function monthNames(m, year) {
  return [`${MONTHS[m]} ${year}`, MONTHS[m], MONTHS[m].slice(0, 3), MONTHS[m][0]].join('|');
}

/** Two rows: the months (each spanning its days) and the days (number over weekday letter). */
function yearHead(view, today) {
  const year = wall(view.start).year;
  const months = el('tr', { class: 'months' },
    el('th', { scope: 'col', class: 'gpu-col', rowspan: 2 }, 'GPU'));
  for (let m = 0; m < 12; m++) {
    const days = Math.round((Date.UTC(year, m + 1, 1) - Date.UTC(year, m, 1)) / DAY); // calendar days
    months.append(el('th', { scope: 'colgroup', colspan: days, class: 'month-head' },
      el('span', { class: 'month-name', dataset: { names: monthNames(m, year) } }, `${MONTHS[m]} ${year}`)));
  }
  const days = el('tr', { class: 'days' });
  const bounds = dayBounds(view);
  for (let d = 0; d < view.days; d++) {
    const date = wall(bounds[d]);
    const classes = ['day-head'];
    if (date.weekday >= 5) classes.push('weekend');
    if (date.day === 1) classes.push('month-start');
    if (d === today) classes.push('today');
    days.append(el('th', {
      scope: 'col', class: classes.join(' '), title: fmtDay(bounds[d]),
      dataset: { day: String(d) },
    },
    el('span', { class: 'day-num' }, String(date.day)),
    el('span', { class: 'day-letter', 'aria-hidden': 'true' }, WEEKDAY_LETTERS[date.weekday]),
    el('span', { class: 'visually-hidden' }, ` ${fmtDay(bounds[d])}${d === today ? ' (today)' : ''}`)));
  }
  return [months, days];
}

/**
 * Inline style for a GPU row's track: the day (and in the week view 6-hour) lines and, in the
 * year view, the weekend shading, drawn as background gradients instead of thousands of cells.
 */
export function trackBackground(view) {
  if (view.kind === 'week') return {};
  const { weekday } = wall(view.start); // Monday 0
  // The 7-day shading pattern starts on a Monday: shift it back to the Monday before 1 Jan.
  return { backgroundPosition: `0 0, ${-weekday * DAY_PX}px 0` };
}

/** Where the year view scrolls so that `ms` shows a little right of the GPU column. */
export function scrollLeftFor(view, ms, visibleWidth) {
  if (view.kind !== 'year') return 0;
  const x = daysBetween(view.start, Math.min(Math.max(ms, view.start), view.end - 1)) * DAY_PX;
  return Math.max(0, x - Math.max(0, (visibleWidth - GPU_COL_PX) / 4));
}
