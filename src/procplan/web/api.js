// api.js — JSON calls to ProcPlan's native API (/api/v1). A failed call throws ApiError
// carrying the server's {"error", "status", "code"} message, ready to show in a toast.
// Paths are relative ('api/v1/...', no leading slash): the pages live next to each other at
// the site's root, so they resolve to /api/v1/... there and to /procplan/api/v1/... when a
// reverse proxy serves ProcPlan under /procplan/ (root_path, ADR 0019).
// Who the requests act as is proven to the server, never claimed here: the session cookie of
// a web sign-in (HttpOnly: this code never sees it) or, on the server's own host, the kernel.

export class ApiError extends Error {
  constructor(message, status, code, data = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.data = data; // the whole error body (e.g. a series' refused occurrences), or null
  }
}

/** What a 401 means to someone using the web pages (the server's text names CLI ways too). */
const SIGN_IN_TEXT = 'You are not signed in (or your session has ended): sign in first.';

// Last reply per polled path with its ETag: the next poll asks "If-None-Match" and a 304 reuses
// it, so an unchanged calendar costs neither the transfer nor the parse.
const lastReplies = new Map();
const LAST_REPLIES_MAX = 16;

/**
 * One request (bodies are JSON: the server refuses anything else on a write). Resolves to
 * {data, text, unchanged}; with `conditional` a GET revalidates the last reply of the same path
 * (unchanged: true on a 304).
 */
export async function request(method, path, body, { conditional = false } = {}) {
  const headers = { Accept: 'application/json' };
  const known = conditional ? lastReplies.get(path) : undefined;
  if (known) headers['If-None-Match'] = known.etag;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method, headers, cache: 'no-store', credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(`Network error: ${err.message}`, 0, 'network');
  }
  if (response.status === 304 && known) return { ...known.reply, unchanged: true };
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* a non-JSON body (proxy error page): reported through the status below */
  }
  if (!response.ok) {
    const message = response.status === 401 && data?.code === 'unauthenticated' ? SIGN_IN_TEXT
      : data?.error || `HTTP ${response.status} ${response.statusText}`.trim();
    throw new ApiError(message, response.status, data?.code || 'http_error', data);
  }
  const reply = { data, text, unchanged: false };
  const etag = response.headers.get('ETag');
  if (conditional && etag) remember(path, etag, reply);
  return reply;
}

function remember(path, etag, reply) {
  lastReplies.delete(path);
  lastReplies.set(path, { etag, reply });
  if (lastReplies.size > LAST_REPLIES_MAX) lastReplies.delete(lastReplies.keys().next().value);
}

export async function getNodes() {
  return (await request('GET', 'api/v1/nodes', undefined, { conditional: true })).data.nodes;
}

/** The calendar of [start, end) as {data, text}; the text lets callers skip re-renders. */
export function getCalendar(startIso, endIso, nodeIds = []) {
  const query = new URLSearchParams({ start: startIso, end: endIso });
  if (nodeIds.length) query.set('node_ids', nodeIds.join(','));
  return request('GET', `api/v1/calendar?${query}`, undefined, { conditional: true });
}

export async function createBooking(payload) {
  return (await request('POST', 'api/v1/bookings', payload)).data;
}

/** What POST /api/v1/bookings would do with `payload`, without booking (4xx: it would fail). */
export async function checkBooking(payload) {
  return (await request('POST', 'api/v1/bookings/check', payload)).data;
}

export async function releaseBooking(id) {
  return (await request('POST', `api/v1/bookings/${encodeURIComponent(id)}/release`)).data;
}

export async function cancelBooking(id) {
  return (await request('POST', `api/v1/bookings/${encodeURIComponent(id)}/cancel`)).data;
}

/** Move the booking's end (extend or shorten); `endIso` is the new end. */
export async function changeBookingEnd(id, endIso) {
  return (await request('PATCH', `api/v1/bookings/${encodeURIComponent(id)}`, { end: endIso })).data;
}

/**
 * Change a booking: any of {start, end (ISO), gpu_ids, label, priority}; resolves to the
 * booking. A refusal throws ApiError with the server's message (who holds the GPUs, when free).
 */
export async function patchBooking(id, changes) {
  return (await request('PATCH', `api/v1/bookings/${encodeURIComponent(id)}`, changes)).data;
}

/** A new calendar feed secret: {id, user, url, node_url} (the secret is shown once). */
export async function createFeed() {
  return (await request('POST', 'api/v1/feeds')).data;
}

/** Revoke the signed-in user's calendar feed: {user, revoked}. */
export async function revokeFeed() {
  return (await request('DELETE', 'api/v1/feeds')).data;
}

/** Running jobs as {data, text} (the text lets callers skip re-renders). */
export function getRunningJobs() {
  return request('GET', 'api/v1/jobs?state=running&limit=1000', undefined, { conditional: true });
}

/** Who the server takes this browser for: GET /api/v1/me ({user: null} when nobody). */
export async function getMe() {
  return (await request('GET', 'api/v1/me')).data;
}

/** Sign in with {user, password} or {link}; the server sets the session cookie. */
export async function signIn(credentials) {
  return (await request('POST', 'api/v1/session', credentials)).data;
}

/** End the web session (the server revokes it and clears the cookie). */
export async function signOut() {
  return (await request('DELETE', 'api/v1/session')).data;
}
