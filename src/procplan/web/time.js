// time.js — date helpers in the display zone: the browser's own time zone by default, or UTC
// (a toggle on every page, remembered in localStorage; zone.js draws it). Days, weeks, the
// booking form's datetime-local fields and every shown time follow that zone; instants stay
// epoch milliseconds and the wire stays UTC ISO 8601 with an explicit offset
// (YYYY-MM-DDTHH:MM:SS+00:00). Local days are found with the Date API's own zone rules, so a
// DST change day is a 23 or 25 hour day.
import { loadPref, savePref } from './dom.js';

export const MINUTE = 60_000;
export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;
export const WEEK = 7 * DAY;

const ZONE_KEY = 'procplan.timeZone';
const UTC_NAMES = new Set(['UTC', 'Etc/UTC', 'Etc/GMT', 'GMT', 'Etc/Universal', 'Universal', 'Etc/Zulu', 'Zulu', 'Etc/UCT', 'UCT']);
const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n) => String(n).padStart(2, '0');

let utc = loadPref(ZONE_KEY, 'local') === 'utc';

/** True when times are shown in UTC (the toggle), false in the browser's zone. */
export function usingUtc() {
  return utc;
}

/** Show times in UTC (`on`) or in the browser's zone; remembered for every page. */
export function setUtc(on) {
  utc = Boolean(on);
  savePref(ZONE_KEY, utc ? 'utc' : 'local');
}

/** The browser's IANA zone ("Europe/Berlin"); "UTC" for UTC and its aliases. */
export function browserZone() {
  let zone = 'UTC';
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  } catch {
    /* no Intl zone support: UTC */
  }
  return UTC_NAMES.has(zone) ? 'UTC' : zone;
}

/** The zone times are shown in: the browser's zone name, or "UTC". */
export function zoneName() {
  return utc ? 'UTC' : browserZone();
}

/**
 * "UTC" or "UTC+05:30" / "UTC−04:00" / "UTC+00:00" (London in winter: not the UTC setting):
 * the display zone's offset at instant `ms`.
 */
export function zoneOffset(ms = Date.now()) {
  if (zoneName() === 'UTC') return 'UTC';
  const minutes = -new Date(ms).getTimezoneOffset();
  const abs = Math.abs(minutes);
  return `UTC${minutes < 0 ? '−' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** "UTC" or "Asia/Kolkata (UTC+05:30)": what the headers and forms say the times are in. */
export function zoneLabel(ms = Date.now()) {
  const name = zoneName();
  const offset = zoneOffset(ms);
  return name === 'UTC' ? 'UTC' : `${name} (${offset})`;
}

/** Wall-clock fields of `ms` in the display zone; `weekday` 0 is Monday, `month` 0 January. */
export function wall(ms) {
  const d = new Date(ms);
  if (utc) {
    return {
      year: d.getUTCFullYear(), month: d.getUTCMonth(), day: d.getUTCDate(), hours: d.getUTCHours(),
      minutes: d.getUTCMinutes(), seconds: d.getUTCSeconds(), weekday: (d.getUTCDay() + 6) % 7,
    };
  }
  return {
    year: d.getFullYear(), month: d.getMonth(), day: d.getDate(), hours: d.getHours(),
    minutes: d.getMinutes(), seconds: d.getSeconds(), weekday: (d.getDay() + 6) % 7,
  };
}

/**
 * The instant of a wall-clock time in the display zone (fields overflow as in Date: day 32 is
 * the next month). A time skipped by a DST change resolves as the Date API does (later).
 */
export function fromWall(year, month, day, hours = 0, minutes = 0, seconds = 0) {
  return utc ? Date.UTC(year, month, day, hours, minutes, seconds)
    : new Date(year, month, day, hours, minutes, seconds).getTime();
}

/** 00:00 of the day holding `ms`. */
export function startOfDay(ms) {
  const w = wall(ms);
  return fromWall(w.year, w.month, w.day);
}

/** 00:00 of the day `n` days after the day holding `ms` (a calendar day: 23, 24 or 25 h). */
export function addDays(ms, n) {
  const w = wall(ms);
  return fromWall(w.year, w.month, w.day + n);
}

/** Whole calendar days from the day holding `a` to the day holding `b`. */
export function daysBetween(a, b) {
  const day = (ms) => {
    const w = wall(ms);
    return Date.UTC(w.year, w.month, w.day) / DAY;
  };
  return day(b) - day(a);
}

/** The end of a slot starting at `start` that is `unit` long (a day unit is a calendar day). */
export function slotEnd(start, unit) {
  return unit >= DAY ? addDays(start, Math.round(unit / DAY)) : start + unit;
}

/** Monday 00:00 of the week holding `ms`. */
export function mondayOf(ms) {
  const w = wall(ms);
  return fromWall(w.year, w.month, w.day - w.weekday);
}

export function toIso(ms) {
  return `${new Date(ms).toISOString().slice(0, 19)}+00:00`;
}

export function parseIso(text) {
  return Date.parse(text);
}

/** "2026-11-23" of the day holding `ms`. */
export function toDateValue(ms) {
  const w = wall(ms);
  return `${w.year}-${pad(w.month + 1)}-${pad(w.day)}`;
}

/** 00:00 of a "YYYY-MM-DD" date (a date field's value); NaN when malformed. */
export function fromDateValue(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || '');
  return m ? fromWall(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : NaN;
}

/** Value for <input type="datetime-local"> showing the wall time in the display zone. */
export function toInputValue(ms) {
  const w = wall(ms);
  return `${toDateValue(ms)}T${pad(w.hours)}:${pad(w.minutes)}`;
}

/** Parse a datetime-local value as a wall time in the display zone; NaN when empty or malformed. */
export function fromInputValue(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value || '');
  if (!m) return NaN;
  const [year, month, day, hours, minutes, seconds] = m.slice(1).map((v) => Number(v || 0));
  return fromWall(year, month - 1, day, hours, minutes, seconds);
}

/** "Mon 23 Nov" */
export function fmtDay(ms) {
  const w = wall(ms);
  return `${WEEKDAYS[w.weekday]} ${w.day} ${MONTHS[w.month]}`;
}

/** "2026-11-23 09:00" */
export function fmtDateTime(ms) {
  return toInputValue(ms).replace('T', ' ');
}

/** "2026-11-23 09:00 UTC" or "2026-11-23 14:30 UTC+05:30": a time with its zone. */
export function fmtWhen(ms) {
  return `${fmtDateTime(ms)} ${zoneOffset(ms)}`;
}

/** "07:48:12" */
export function fmtClock(ms) {
  const w = wall(ms);
  return `${pad(w.hours)}:${pad(w.minutes)}:${pad(w.seconds)}`;
}

/** Index 0–6 of the day holding `now` in the week starting `monday`, or -1. */
export function todayIndex(monday, now) {
  const index = daysBetween(monday, now);
  return now >= monday && index >= 0 && index < 7 ? index : -1;
}
