// audit.js — the audit log (issue #12; the web face of `procplan audit`): who created, changed,
// released or cancelled which booking, job, token, user or tenant, newest first, 100 a page.
// The server decides what a caller sees: an admin every entry (or, with the user filter, the
// entries where that user acted or owns the target), anyone else only their own. This page
// never filters; it shows what it is given. The filter and the page live in the address
// (?user=&offset=), so a reload or a shared link shows the same entries. Server strings are
// rendered as text only (dom.js `el`). Times are in the display zone (time.js, zone.js).
import { request } from './api.js';
import { el } from './dom.js';
import { isAdmin, showSession, signInHref } from './session.js';
import { usingUtc } from './time.js';
import { mountZoneSwitch } from './zone.js';

const $ = (id) => document.getElementById(id);
const PAGE = 100;
const TIME_FORMAT = {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
};
const VIA_TEXT = {
  peer: 'recognised by the server’s own machine',
  token: 'with an API token',
  proxy: 'through the site’s single sign-on',
  session: 'signed in on a browser',
  anonymous: 'not signed in',
};

let me = null;
let asked = 0; // the latest request: older answers that arrive late are dropped

mountZoneSwitch(); // a switch reloads the page: every time is drawn again
showSession().then((found) => {
  me = found;
  setUp();
});

/** {user, offset} from the address (a non-admin's `user` is ignored: the server filters). */
function wanted() {
  const query = new URLSearchParams(window.location.search);
  const offset = Number.parseInt(query.get('offset') || '0', 10);
  return {
    user: isAdmin(me) ? (query.get('user') || '').trim() : '',
    offset: Number.isFinite(offset) && offset > 0 ? offset - (offset % PAGE) : 0,
  };
}

function go({ user, offset }) {
  const query = new URLSearchParams();
  if (user) query.set('user', user);
  if (offset) query.set('offset', String(offset));
  const search = query.toString();
  const target = `${window.location.pathname}${search ? `?${search}` : ''}`;
  if (target !== `${window.location.pathname}${window.location.search}`) window.history.pushState(null, '', target);
  load();
}

function setUp() {
  if (!me.user && !me.failed) {
    showSignIn('Sign in to see the audit log of your bookings and jobs.');
    return;
  }
  const admin = isAdmin(me);
  const title = admin ? 'Audit log' : 'My activity';
  $('audit-title').textContent = title;
  document.title = `ProcPlan — ${title.toLowerCase()}`;
  $('audit-filter').hidden = !admin;
  if (admin) {
    $('audit-filter').addEventListener('submit', (event) => {
      event.preventDefault();
      go({ user: $('audit-user').value.trim(), offset: 0 });
    });
    $('audit-clear').addEventListener('click', () => {
      $('audit-user').value = '';
      go({ user: '', offset: 0 });
      $('audit-user').focus();
    });
  }
  $('audit-newer').addEventListener('click', () => { const w = wanted(); go({ ...w, offset: Math.max(0, w.offset - PAGE) }); });
  $('audit-older').addEventListener('click', () => { const w = wanted(); go({ ...w, offset: w.offset + PAGE }); });
  $('audit-refresh').addEventListener('click', () => load());
  window.addEventListener('popstate', () => load());
  load();
}

async function load() {
  const { user, offset } = wanted();
  const admin = isAdmin(me);
  if (admin) {
    if (document.activeElement !== $('audit-user')) $('audit-user').value = user;
    $('audit-clear').hidden = !user;
  }
  $('audit-scope').textContent = scopeText(admin, user);
  const query = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  if (user) query.set('user', user);
  const mine = ++asked;
  $('summary').textContent = 'Loading…';
  $('status').textContent = '';
  try {
    const { data } = await request('GET', `api/v1/audit?${query}`);
    if (mine !== asked) return;
    render(data.entries || [], Number(data.total) || 0, offset, user);
  } catch (err) {
    if (mine !== asked) return;
    showProblem(err);
  }
}

function scopeText(admin, user) {
  if (!admin) return 'Entries where you acted or own the item (changes an admin made to your items included), newest first.';
  if (user) return `Entries where ${user} acted or owns the item, newest first.`;
  return 'Every change made through ProcPlan by anyone, newest first.';
}

function render(entries, total, offset, user) {
  $('audit-problem').hidden = true;
  $('audit-problem').replaceChildren();
  $('audit').tBodies[0].replaceChildren(...entries.map(entryRow));
  $('audit-section').hidden = entries.length === 0;
  const empty = $('audit-empty');
  empty.hidden = entries.length > 0;
  if (total === 0) empty.textContent = user ? `No entries for ${user}.` : 'No entries yet: nothing has been booked, submitted or changed.';
  else if (entries.length === 0) empty.textContent = 'No entries on this page: go back to newer entries.';
  const first = entries.length ? offset + 1 : 0;
  const last = offset + entries.length;
  $('summary').textContent = total === 0 ? 'No entries' : `${total} entr${total === 1 ? 'y' : 'ies'}${user ? ` for ${user}` : ''}`;
  $('audit-range').textContent = entries.length ? `${first}–${last} of ${total}` : '';
  const newer = $('audit-newer');
  const older = $('audit-older');
  const focused = document.activeElement;
  newer.disabled = offset === 0;
  older.disabled = last >= total;
  $('audit-pages').hidden = total === 0 && offset === 0;
  // A button that was just used and is now disabled would drop the focus to the page.
  for (const [used, other] of [[newer, older], [older, newer]]) {
    if (focused === used && used.disabled) (other.disabled ? $('audit-refresh') : other).focus();
  }
  $('status').textContent = `Updated ${new Date().toLocaleTimeString(undefined, { timeZone: usingUtc() ? 'UTC' : undefined, timeZoneName: 'short' })}`;
}

function entryRow(entry) {
  const ms = Date.parse(entry.at);
  const local = Number.isNaN(ms) ? String(entry.at ?? '—') : new Date(ms).toLocaleString(undefined, { ...TIME_FORMAT, timeZone: usingUtc() ? 'UTC' : undefined, timeZoneName: 'short' });
  const via = entry.via || '';
  return el('tr', { dataset: { entry: entry.id, action: entry.action || '' } },
    el('td', { class: 'when' }, el('time', { datetime: entry.at || null, title: entry.at || null }, local)),
    el('td', { class: 'actor' }, el('span', { class: 'actor-name' }, entry.actor || '—'),
      entry.as_admin ? el('span', {
        class: 'badge badge-as-admin',
        title: `An admin’s change to ${entry.owner ? `${entry.owner}’s` : 'someone else’s'} item`,
      }, 'as admin') : null),
    el('td', { class: 'action' }, el('code', {}, entry.action || '—')),
    el('td', { class: 'target' }, entry.target || '—'),
    el('td', { class: 'owner' }, entry.owner || '—'),
    el('td', { class: 'via', title: VIA_TEXT[via] || null }, via || '—'),
    el('td', { class: 'detail' }, entry.detail || ''));
}

function clearTable() {
  $('audit').tBodies[0].replaceChildren();
  $('audit-section').hidden = true;
  $('audit-empty').hidden = true;
  $('audit-pages').hidden = true;
}

function showSignIn(text) {
  clearTable();
  $('audit-filter').hidden = true;
  $('summary').textContent = 'Not signed in';
  const box = $('audit-problem');
  box.replaceChildren(el('p', {}, text, ' ', el('a', { class: 'sign-in', href: signInHref() }, 'Sign in')));
  box.hidden = false;
}

function showProblem(err) {
  clearTable();
  if (err.status === 401) {
    showSignIn('You are not signed in (or your session has ended): sign in to see the audit log.');
    return;
  }
  $('summary').textContent = 'The audit log could not be shown';
  const text = err.status === 403
    ? `Your account may not read this audit log: ${err.message}`
    : `Could not load the audit log: ${err.message}`;
  const box = $('audit-problem');
  box.replaceChildren(el('p', {}, text),
    err.status === 403 ? null : el('button', { type: 'button', onclick: () => load() }, 'Try again'));
  box.hidden = false;
}
