// session.js — who this browser is signed in as, shown in every page's header, and what that
// lets it change. GET /api/v1/me is asked once per page load; the answer is proven by the
// server (a session cookie, or on the server's own machine the kernel), never typed here.
// The header shows "Signed in as NAME" (with an "admin" badge and an "acting as admin" notice),
// a link to the audit page ("Audit log" for an admin, "My activity" for anyone else), a Sign
// out button for a web session, or a Sign in link for an anonymous visitor.
import { getMe, signOut } from './api.js';
import { el, toast } from './dom.js';

const ANONYMOUS = {
  user: null, role: null, via: 'anonymous', unix_user: null, manages: [], acting_as_admin_for: null, actor: null,
};
const VIA_TEXT = {
  peer: 'recognised as your account on the server’s own machine',
  token: 'signed in with an API token',
  proxy: 'signed in through the site’s single sign-on',
  session: 'signed in on this browser',
};

let loading = null;

/**
 * The caller as the server sees them ({user: null} when nobody is signed in); asked once per
 * page. `failed` is true when the server could not be asked (the page then acts anonymous).
 */
export function loadSession() {
  loading ??= getMe().then(
    (me) => ({ ...ANONYMOUS, ...me, failed: false }),
    (error) => ({ ...ANONYMOUS, failed: true, error }),
  );
  return loading;
}

export function isAdmin(me) {
  return Boolean(me?.user) && me.role === 'admin';
}

/**
 * May `me` change an item (booking, job) owned by `owner`? 'owner' for their own, 'admin' when
 * only their admin role allows it, null when they may not.
 */
export function mayChange(me, owner) {
  if (!me?.user) return null;
  if (owner === me.user) return 'owner';
  return isAdmin(me) ? 'admin' : null;
}

/** The sign-in page's address, coming back to this page afterwards. */
export function signInHref() {
  const here = `${window.location.pathname}${window.location.search}${window.location.hash}`;
  return here === '/' ? 'login.html' : `login.html?next=${encodeURIComponent(here)}`;
}

/** Keep `link` pointing at the sign-in page with the current address (the planner's hash
 * changes as one moves around): its href is refreshed as it is followed. */
export function bindSignInLink(link) {
  link.href = signInHref();
  const update = () => { link.href = signInHref(); };
  link.addEventListener('click', update);
  link.addEventListener('focus', update);
  link.addEventListener('mouseenter', update);
  return link;
}

/**
 * Fill the header's session area `box` for `me`: who, the admin badge and notice, and Sign out
 * or Sign in. `signInLink: false` leaves out the Sign in link (the sign-in page itself).
 */
export function renderSession(box, me, { signInLink = true } = {}) {
  const items = [];
  if (me.user) {
    const how = VIA_TEXT[me.via] || '';
    items.push(el('span', { class: 'session-who', title: how || null },
      'Signed in as ', el('strong', { class: 'session-user' }, me.user)));
    if (isAdmin(me)) items.push(el('span', { class: 'role-badge', title: 'This account is an admin' }, 'admin'));
    if (me.via === 'peer') items.push(el('span', { class: 'session-via' }, '(this machine)'));
    items.push(auditLink(me));
    items.push(notifyLink());
    if (me.via === 'session') {
      items.push(el('button', { type: 'button', class: 'sign-out', onclick: (ev) => leave(ev.currentTarget) }, 'Sign out'));
    } else if (signInLink) {
      items.push(bindSignInLink(el('a', { class: 'sign-in', title: 'Sign in with another account' }, 'Switch user')));
    }
    if (isAdmin(me)) {
      const text = me.acting_as_admin_for
        ? `Acting as admin for ${me.acting_as_admin_for} (you are ${me.actor})`
        : 'Acting as admin: you can change everyone’s bookings and jobs';
      items.push(el('span', { class: 'admin-notice', role: 'note' }, text));
    }
  } else {
    items.push(el('span', { class: 'session-who' }, me.failed ? 'Could not check who you are' : 'Not signed in'));
    if (signInLink) items.push(bindSignInLink(el('a', { class: 'sign-in' }, 'Sign in')));
  }
  box.replaceChildren(...items);
  box.dataset.user = me.user || '';
  box.dataset.role = me.role || '';
  box.setAttribute('aria-busy', 'false');
}

/** The notification channels page (issue #14). */
function notifyLink() {
  const here = /\/notify\.html$/.test(window.location.pathname);
  return el('a', { class: 'session-notify', href: 'notify.html', 'aria-current': here ? 'page' : null }, 'Notifications');
}

/** The audit page: every entry for an admin ("Audit log"), one's own for anyone else. */
function auditLink(me) {
  const here = /\/audit\.html$/.test(window.location.pathname);
  return el('a', { class: 'session-audit', href: 'audit.html', 'aria-current': here ? 'page' : null },
    isAdmin(me) ? 'Audit log' : 'My activity');
}

/** Load the session and show it in `#session`; resolves to the `me` object. */
export async function showSession(options) {
  const me = await loadSession();
  const box = document.getElementById('session');
  if (box) renderSession(box, me, options);
  return me;
}

async function leave(button) {
  button.disabled = true;
  try {
    await signOut();
    window.location.reload();
  } catch (err) {
    toast(`Could not sign out: ${err.message}`, 'error');
    button.disabled = false;
  }
}
