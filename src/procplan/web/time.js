// time.js — UTC-only date helpers. Instants are epoch milliseconds; the wire format is
// ISO 8601 with an explicit offset (YYYY-MM-DDTHH:MM:SS+00:00).

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const WEEK = 7 * DAY;

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n) => String(n).padStart(2, '0');

/** Monday 00:00 UTC of the week holding `ms`. */
export function mondayOf(ms) {
  const d = new Date(ms);
  const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return midnight - ((d.getUTCDay() + 6) % 7) * DAY;
}

export function toIso(ms) {
  return `${new Date(ms).toISOString().slice(0, 19)}+00:00`;
}

export function parseIso(text) {
  return Date.parse(text);
}

/** Value for <input type="datetime-local"> showing the UTC wall time. */
export function toInputValue(ms) {
  return new Date(ms).toISOString().slice(0, 16);
}

/** Parse a datetime-local value as UTC; NaN when empty or malformed. */
export function fromInputValue(value) {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return NaN;
  return Date.parse(`${value.length === 16 ? `${value}:00` : value}Z`);
}

/** "Mon 23 Nov" */
export function fmtDay(ms) {
  const d = new Date(ms);
  return `${WEEKDAYS[(d.getUTCDay() + 6) % 7]} ${d.getUTCDate()} ${MONTHS[d.getUTCMonth()]}`;
}

/** "2026-11-23 09:00" */
export function fmtDateTime(ms) {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}

/** "07:48:12" */
export function fmtClock(ms) {
  const d = new Date(ms);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** Index 0–6 of the day holding `now` in the week starting `monday`, or -1. */
export function todayIndex(monday, now) {
  const index = Math.floor((now - monday) / DAY);
  return index >= 0 && index < 7 ? index : -1;
}
