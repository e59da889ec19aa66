// controls.js — the planner's header and page-level controls: which view and date are shown
// (kept in the URL hash, so a link opens the same view, and in localStorage), the view switch,
// prev/today/next and the date picker (dates are days of the display zone, time.js), the node
// filter (kept in step with the node list), the help dialog and the single-key shortcuts.
import { loadPref, savePref } from './dom.js';
import { addDays, fromDateValue, toDateValue, zoneName } from './time.js';
import { viewLabel } from './views.js';

const VIEW_KEY = 'procplan.view';
const $ = (id) => document.getElementById(id);

/** {kind, at} from the URL hash (#view=year&date=2027-03-01), else the remembered view and now. */
export function readLocation(now) {
  const params = new URLSearchParams(window.location.hash.slice(1));
  const remembered = loadPref(VIEW_KEY, 'week');
  const kind = ['week', 'year'].includes(params.get('view')) ? params.get('view')
    : (remembered === 'year' ? 'year' : 'week');
  const date = fromDateValue(params.get('date'));
  return { kind, at: Number.isFinite(date) ? date : now };
}

/** Show `view` in the header and the address bar; `at` is the date the user is looking at. */
export function showView(view, at) {
  const year = view.kind === 'year';
  $('week-label').textContent = `${viewLabel(view)} (${zoneName()})`;
  $('view-week').setAttribute('aria-pressed', String(!year));
  $('view-year').setAttribute('aria-pressed', String(year));
  $('week-prev').setAttribute('aria-label', year ? 'Previous year' : 'Previous week');
  $('week-next').setAttribute('aria-label', year ? 'Next year' : 'Next week');
  const shown = Math.min(Math.max(at, view.start), addDays(view.end, -1));
  const date = toDateValue(shown);
  $('date-pick').value = date;
  savePref(VIEW_KEY, view.kind);
  const hash = `#view=${view.kind}&date=${date}`;
  if (window.location.hash !== hash) window.history.replaceState(null, '', hash);
}

/** Wire the view switch, prev/today/next and the date field to `go(kind | null, at | null, steps)`. */
export function bindViewControls(go) {
  $('view-week').addEventListener('click', () => go('week', null, 0));
  $('view-year').addEventListener('click', () => go('year', null, 0));
  $('week-prev').addEventListener('click', () => go(null, null, -1));
  $('week-next').addEventListener('click', () => go(null, null, 1));
  $('week-today').addEventListener('click', () => go(null, Date.now(), 0));
  $('date-pick').addEventListener('change', (ev) => {
    const at = fromDateValue(ev.target.value);
    if (Number.isFinite(at)) go(null, at, 0);
  });
}

/** Make the node drop-down list exactly `nodes`, with `chosen` selected. */
export function syncNodeFilter(select, nodes, chosen) {
  const wanted = nodes.map((node) => [node.id, `${node.name} (${node.id})`]);
  const have = [...select.options].slice(1).map((o) => [o.value, o.text]);
  if (JSON.stringify(wanted) !== JSON.stringify(have)) {
    select.replaceChildren(new Option('All nodes', ''), ...wanted.map(([id, text]) => new Option(text, id)));
  }
  select.value = wanted.some(([id]) => id === chosen) ? chosen : '';
}

/** The help dialog: opened by its button or "?", closed by Esc or ×; focus goes back. */
export function setupHelp() {
  const dialog = $('help-dialog');
  let opener = null;
  const open = () => {
    if (dialog.open) return;
    opener = document.activeElement;
    dialog.showModal();
  };
  $('help-open').addEventListener('click', open);
  dialog.addEventListener('close', () => {
    if (opener?.isConnected) opener.focus();
  });
  return open;
}

/** "?" opens the help, "t" goes to today; not while typing or while a dialog is open. */
export function bindShortcuts({ help, today }) {
  document.addEventListener('keydown', (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.defaultPrevented) return;
    if (ev.target.closest?.('input, select, textarea, dialog')) return;
    if (ev.key === '?') help();
    else if (ev.key === 't') today();
    else return;
    ev.preventDefault();
  });
}

/** Show or hide the loading bar (and mark the grid busy for assistive technology). */
export function setBusy(busy) {
  $('loading').hidden = !busy;
  $('grid').setAttribute('aria-busy', String(busy));
}
