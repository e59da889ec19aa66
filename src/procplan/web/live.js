// live.js — helpers shared by the live pages (cluster board, queue): conditional JSON fetches,
// a poll loop that never overlaps itself, keyed table rows that are rebuilt only when their
// data changed (no flicker, focus kept), and number/time formatting (times in the display
// zone, time.js: the browser's zone or UTC).
import { request } from './api.js';
import { fmtClock, fmtWhen, zoneOffset } from './time.js';

export const REFRESH_MS = 5_000;

/**
 * GET or write `path` through the planner's API helper (same error messages);
 * GETs are conditional, so an unchanged list costs a 304. Resolves to {data, text}.
 */
export function fetchJson(path, { method = 'GET' } = {}) {
  return request(method, path, undefined, { conditional: method === 'GET' });
}

/** Run `fn` now and every `ms` (never two at once); returns a function that runs it at once. */
export function poll(fn, ms = REFRESH_MS) {
  let running = false;
  let timer = null;
  async function tick() {
    clearTimeout(timer);
    if (!running) {
      running = true;
      try {
        await fn();
      } finally {
        running = false;
      }
    }
    timer = setTimeout(tick, ms);
  }
  tick();
  return tick;
}

/**
 * Make `tbody`'s rows match `items`: a row is kept while `sig(item)` is unchanged, rebuilt with
 * `build(item)` otherwise; rows are only moved when out of order, so focus and hover survive.
 * Returns the rows in order (each with its item) for per-tick updates such as elapsed time.
 */
export function syncRows(tbody, items, key, sig, build) {
  const old = new Map([...tbody.rows].map((row) => [row.dataset.key, row]));
  const rows = items.map((item) => {
    const k = String(key(item));
    const s = sig(item);
    let row = old.get(k);
    if (!row || row.dataset.sig !== s) {
      const fresh = build(item);
      fresh.dataset.key = k;
      fresh.dataset.sig = s;
      if (row) row.replaceWith(fresh);
      row = fresh;
    }
    old.delete(k);
    return row;
  });
  for (const row of old.values()) row.remove();
  rows.forEach((row, i) => {
    if (tbody.rows[i] !== row) tbody.insertBefore(row, tbody.rows[i] || null);
  });
  return rows;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** "2026-11-23 10:00 UTC" (or "… 15:30 UTC+05:30") for an ISO instant; '—' for null. */
export function fmtInstant(iso) {
  if (!iso) return '—';
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return String(iso);
  return fmtWhen(ms);
}

/** "Updated 10:04:05 UTC+01:00 · refreshes every 5 s" for the live pages' status line. */
export function updatedText(now = Date.now()) {
  return `Updated ${fmtClock(now)} ${zoneOffset(now)} · refreshes every ${REFRESH_MS / 1000} s`;
}

export function fmtMb(mb) {
  if (mb === null || mb === undefined) return '—';
  return mb >= 1024 ? `${(mb / 1024).toFixed(1)} GiB` : `${Math.round(mb)} MiB`;
}

export function fmtNum(value, unit, digits = 0) {
  return value === null || value === undefined ? '—' : `${Number(value).toFixed(digits)} ${unit}`;
}

/** Show the last error (once) or clear it, in the page's status line. */
export function setStatus(node, error, okText) {
  node.textContent = error ? `Refresh failed: ${error.message}` : okText;
  node.classList.toggle('status-error', Boolean(error));
}
