// usage.js — GPU-hours booked, used and idle per user, tenant or node (issue #14; the web face
// of `procplan report`): two stacked daily bar charts (booked; run by jobs), booked against
// used and idle for the period, the totals table and its CSV. Charts are plain SVG built with
// createElementNS (no library, nothing fetched from elsewhere: air-gapped labs see them too);
// names from the server are text nodes only. Days are calendar days of the display zone
// (time.js: the browser's zone, or UTC by the switch): the server is asked for them (tz).
import { request } from './api.js';
import { el } from './dom.js';
import { showSession } from './session.js';
import { addDays, parseIso, toDateValue, toIso, usingUtc, zoneName } from './time.js';
import { mountZoneSwitch } from './zone.js';

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#3b6fd8', '#e0803a', '#3aa676', '#c84a6a', '#8a63d2', '#c9a227', '#2aa1b3', '#7b8794'];
const W = 760;
const H = 220;
const PAD = { left: 44, right: 8, top: 10, bottom: 26 };

let last = null; // the daily answer shown (for the CSV)

mountZoneSwitch(); // a switch reloads the page: the days are asked for again
showSession().then((me) => {
  if (!me.user) {
    problem('Sign in to see the usage report (every signed-in user sees it, like sreport).');
    $('usage-summary').textContent = '';
    return;
  }
  $('usage-by').addEventListener('change', load);
  $('usage-days').addEventListener('change', load);
  $('usage-csv').addEventListener('click', download);
  load();
});

function problem(text) {
  $('usage-problem').textContent = text;
  $('usage-problem').hidden = !text;
}

async function load() {
  const by = $('usage-by').value;
  const days = Number($('usage-days').value);
  const end = addDays(Date.now(), 1); // the end of today
  const start = addDays(end, -days);
  const query = new URLSearchParams({ by, start: toIso(start), end: toIso(end) });
  const zone = usingUtc() ? 'UTC' : zoneName();
  if (zone !== 'UTC') query.set('tz', zone);
  try {
    let data;
    try {
      ({ data } = await request('GET', `api/v1/usage/daily?${query}`));
    } catch (err) {
      if (err.code !== 'invalid_tz') throw err;
      query.delete('tz'); // a zone the server does not know: its UTC days, said so below
      ({ data } = await request('GET', `api/v1/usage/daily?${query}`));
      data.zone = 'UTC';
    }
    data.zone ??= zone;
    last = data;
    render(data, data.zone);
    problem('');
  } catch (err) {
    problem(`Could not load the usage report: ${err.message}`);
  }
}

/** Per key, the sum of `field` over the days. */
function totals(data) {
  const sums = new Map();
  for (const day of data.days) {
    for (const row of day.rows) {
      const key = row[data.by];
      const sum = sums.get(key) || { booked_s: 0, used_s: 0, job_s: 0, unbooked_s: 0, jobs: 0 };
      for (const field of Object.keys(sum)) sum[field] += row[field] || 0;
      sums.set(key, sum);
    }
  }
  return sums;
}

function render(data, zone) {
  const sums = totals(data);
  const keys = [...sums.keys()].sort();
  const color = new Map(keys.map((key, i) => [key, COLORS[i % COLORS.length]]));
  const hours = (s) => s / 3600;
  const booked = [...sums.values()].reduce((n, t) => n + t.booked_s, 0);
  const used = [...sums.values()].reduce((n, t) => n + t.used_s, 0);
  $('usage-summary').textContent = `${data.days.length} days (${zone}) · ${hours(booked).toFixed(1)} GPU-h booked, `
    + `${hours(used).toFixed(1)} used (${booked ? Math.round((100 * used) / booked) : 0} %)`;
  $('chart-booked').replaceChildren(stacked(data, keys, color, 'booked_s'), legend(keys, color));
  $('chart-jobs').replaceChildren(stacked(data, keys, color, 'job_s'), legend(keys, color));
  $('chart-used').replaceChildren(bookedVsUsed(keys, sums));
  $('usage-key').textContent = data.by[0].toUpperCase() + data.by.slice(1);
  $('usage-table').tBodies[0].replaceChildren(...keys.map((key) => {
    const t = sums.get(key);
    const idle = t.booked_s - t.used_s;
    return el('tr', { dataset: { key } }, el('td', {}, key),
      ...[t.booked_s, t.used_s, idle].map((s) => el('td', { class: 'num' }, hours(s).toFixed(2))),
      el('td', { class: 'num' }, t.booked_s ? `${Math.round((100 * idle) / t.booked_s)} %` : '—'),
      el('td', { class: 'num' }, hours(t.job_s).toFixed(2)),
      el('td', { class: 'num' }, hours(t.unbooked_s).toFixed(2)),
      el('td', { class: 'num' }, String(t.jobs)));
  }));
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  node.append(...children);
  return node;
}

/** Scale and axis: the y scale for `max` hours and its gridlines with labels. */
function axis(max) {
  const top = max > 0 ? max : 1;
  const y = (v) => PAD.top + (H - PAD.top - PAD.bottom) * (1 - v / top);
  const ticks = [0, top / 2, top].map((v) => svg('g', {},
    svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid' }),
    svg('text', { x: PAD.left - 4, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, v.toFixed(v < 10 ? 1 : 0))));
  return { y, ticks };
}

/** One bar per day, a segment per key of `field` (seconds → hours), stacked. */
function stacked(data, keys, color, field) {
  const days = data.days.map((day) => new Map(day.rows.map((r) => [r[data.by], (r[field] || 0) / 3600])));
  const max = Math.max(0, ...days.map((d) => [...d.values()].reduce((a, b) => a + b, 0)));
  const { y, ticks } = axis(max);
  const slot = (W - PAD.left - PAD.right) / Math.max(days.length, 1);
  const bars = days.flatMap((values, i) => {
    let base = 0;
    const x = PAD.left + i * slot + slot * 0.15;
    const day = data.zone === 'UTC' ? data.days[i].start.slice(5, 10) : toDateValue(parseIso(data.days[i].start)).slice(5);
    const parts = keys.filter((k) => values.get(k)).map((key) => {
      const v = values.get(key);
      const rect = svg('rect', { x, y: y(base + v), width: slot * 0.7, height: Math.max(y(base) - y(base + v), 0), fill: color.get(key) },
        svg('title', {}, `${key} · ${day}: ${v.toFixed(2)} GPU-h`));
      base += v;
      return rect;
    });
    const label = i % Math.ceil(days.length / 14) === 0
      ? [svg('text', { x: x + slot * 0.35, y: H - 8, 'text-anchor': 'middle', class: 'tick' }, day)] : [];
    return [...parts, ...label];
  });
  return svg('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', class: 'chart-svg' }, ...ticks, ...bars);
}

/** Per key: booked (light) with used (dark) over it; the gap is idle while booked. */
function bookedVsUsed(keys, sums) {
  const rows = keys.filter((k) => sums.get(k).booked_s > 0);
  if (!rows.length) return el('p', { class: 'empty' }, 'No bookings in this period.');
  const max = Math.max(...rows.map((k) => sums.get(k).booked_s / 3600));
  const { y, ticks } = axis(max);
  const slot = (W - PAD.left - PAD.right) / rows.length;
  const bars = rows.flatMap((key, i) => {
    const t = sums.get(key);
    const x = PAD.left + i * slot + slot * 0.2;
    const [b, u] = [t.booked_s / 3600, t.used_s / 3600];
    return [
      svg('rect', { x, y: y(b), width: slot * 0.6, height: y(0) - y(b), class: 'booked' },
        svg('title', {}, `${key}: ${b.toFixed(2)} GPU-h booked, ${(b - u).toFixed(2)} idle`)),
      svg('rect', { x, y: y(u), width: slot * 0.6, height: y(0) - y(u), class: 'used' },
        svg('title', {}, `${key}: ${u.toFixed(2)} GPU-h used`)),
      svg('text', { x: x + slot * 0.3, y: H - 8, 'text-anchor': 'middle', class: 'tick' }, key),
    ];
  });
  return svg('svg', { viewBox: `0 0 ${W} ${H}`, width: '100%', class: 'chart-svg' }, ...ticks, ...bars);
}

function legend(keys, color) {
  return el('ul', { class: 'chart-legend' }, ...keys.map((key) => el('li', {},
    el('span', { class: 'swatch', style: { background: color.get(key) } }), key)));
}

/** The totals as CSV (one row per key), what the table shows. */
function download() {
  if (!last) return;
  const quote = (v) => (/[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  const lines = [[last.by, 'booked_gpu_hours', 'used_gpu_hours', 'idle_gpu_hours', 'job_gpu_hours', 'unbooked_gpu_hours', 'jobs'].join(',')];
  for (const [key, t] of [...totals(last).entries()].sort()) {
    const h = (s) => (s / 3600).toFixed(3);
    lines.push([quote(key), h(t.booked_s), h(t.used_s), h(t.booked_s - t.used_s), h(t.job_s), h(t.unbooked_s), t.jobs].join(','));
  }
  const link = el('a', { href: URL.createObjectURL(new Blob([`${lines.join('\n')}\n`], { type: 'text/csv' })), download: `procplan-usage-${last.by}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
}
