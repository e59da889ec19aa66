// login.js — the sign-in page. A password sign-in POSTs {user, password} (JSON) to
// /api/v1/session; an admin's login link (login.html#link=SECRET) POSTs {link}, after taking the
// secret out of the address bar and the history. The server answers with an HttpOnly session
// cookie, and the page goes on to `?next=` (a path of this site only) or the planner.
import { signIn } from './api.js';
import { showSession } from './session.js';

const $ = (id) => document.getElementById(id);
const form = $('login-form');
const user = $('login-user');
const password = $('login-password');
const submit = $('login-submit');

/** Where to go after signing in: `?next=` when it stays on this site, else the planner
 * ('./': next to this page, so under a reverse proxy's path prefix too). */
function nextPage() {
  const home = './';
  const asked = new URLSearchParams(window.location.search).get('next');
  if (!asked || !asked.startsWith('/') || asked.startsWith('//') || asked.startsWith('/\\')) return home;
  try {
    const target = new URL(asked, window.location.origin);
    return target.origin === window.location.origin ? `${target.pathname}${target.search}${target.hash}` : home;
  } catch {
    return home;
  }
}

function showError(text) {
  const box = $('login-error');
  box.textContent = text;
  box.hidden = !text;
  $('login-status').textContent = '';
}

function explain(err, how) {
  if (err.status === 0) return 'Cannot reach the ProcPlan server. Check your connection and try again.';
  if (err.status === 401) {
    return how === 'link'
      ? 'This sign-in link does not work: it was already used or it has expired. Ask an admin for a new one, or sign in with your password.'
      : 'Wrong user name or password.';
  }
  if (err.status === 429) return 'Too many attempts. Wait a minute, then try again.';
  if (err.status === 403 && err.code === 'user_disabled') return 'This account is disabled. Ask an admin.';
  return `Could not sign in: ${err.message}`;
}

async function signInWith(credentials, how) {
  showError('');
  submit.disabled = true;
  form.setAttribute('aria-busy', 'true');
  $('login-status').textContent = how === 'link' ? 'Signing in with your link…' : 'Signing in…';
  try {
    const me = await signIn(credentials);
    $('login-status').textContent = `Signed in as ${me.user}. Opening ProcPlan…`;
    window.location.replace(nextPage());
  } catch (err) {
    showError(explain(err, how));
    submit.disabled = false;
    form.setAttribute('aria-busy', 'false');
    if (how === 'password') {
      password.select();
      password.focus();
    } else {
      user.focus();
    }
  }
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = user.value.trim();
  if (!name) {
    showError('Enter your user name.');
    user.focus();
    return;
  }
  if (!password.value) {
    showError('Enter your password.');
    password.focus();
    return;
  }
  signInWith({ user: name, password: password.value }, 'password');
});

/** A login link: its secret leaves the address bar (and so the history) before it is used. */
function linkFromAddress() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  if (!params.has('link')) return null;
  window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}`);
  return params.get('link').trim();
}

const link = linkFromAddress();
showSession({ signInLink: false });
if (link === null) {
  user.focus();
} else if (!link) {
  showError('This sign-in link is incomplete: copy the whole link, or sign in with your password.');
  user.focus();
} else {
  signInWith({ link }, 'link');
}
