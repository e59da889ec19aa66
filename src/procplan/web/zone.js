// zone.js — the "Times: <browser zone> | UTC" switch every page shows (issue #17): times are
// shown and entered in the browser's time zone unless the user picks UTC; the choice is kept
// in localStorage (time.js) for every page. Elements with class "tz-name" / "tz-label" name the
// display zone ("Asia/Kolkata" / "Asia/Kolkata (UTC+05:30)"), so forms and hints never guess.
import { el } from './dom.js';
import { browserZone, setUtc, usingUtc, zoneLabel, zoneName } from './time.js';

/** Fill every .tz-name and .tz-label under `root` with the display zone. */
export function showZoneNames(root = document) {
  for (const node of root.querySelectorAll('.tz-name')) node.textContent = zoneName();
  for (const node of root.querySelectorAll('.tz-label')) node.textContent = zoneLabel();
}

/**
 * The switch, appended to `host` (default: the page header's .filters, else the header).
 * `onChange()` runs after a switch (default: reload the page, which redraws every time).
 */
export function mountZoneSwitch(host = null, onChange = () => window.location.reload()) {
  const place = host ?? document.querySelector('.topbar .filters') ?? document.querySelector('.topbar');
  if (!place) return null;
  const local = browserZone();
  const button = (utc, text, title) => el('button', {
    type: 'button', class: utc ? 'zone-utc' : 'zone-local', 'aria-pressed': String(usingUtc() === utc), title,
    onclick: () => {
      if (usingUtc() === utc) return;
      setUtc(utc);
      sync();
      showZoneNames();
      onChange();
    },
  }, text);
  const group = el('div', { class: 'zone-switch', role: 'group', 'aria-label': 'Time zone' },
    el('span', { class: 'zone-caption', 'aria-hidden': 'true' }, 'Times:'),
    button(false, local === 'UTC' ? 'Browser (UTC)' : local, `Show times in this browser's time zone (${local})`),
    button(true, 'UTC', 'Show times in UTC'));
  function sync() {
    for (const b of group.querySelectorAll('button')) {
      b.setAttribute('aria-pressed', String(b.classList.contains('zone-utc') === usingUtc()));
    }
    group.title = `Times are shown in ${zoneLabel()}`;
  }
  sync();
  place.append(group);
  showZoneNames();
  return group;
}
