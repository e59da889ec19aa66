// api.js — JSON calls to ProcPlan's native API (/api/v1). A failed call throws ApiError
// carrying the server's {"error", "status", "code"} message, ready to show in a toast.
import { loadPref, savePref } from './dom.js';

const USER_KEY = 'procplan.user';
export const USER_HEADER = 'X-ProcPlan-User';

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function currentUser() {
  return String(loadPref(USER_KEY, '')).trim();
}

export function saveUser(name) {
  savePref(USER_KEY, name.trim());
}

/** One request; writes carry the user header. Resolves to {data, text}. */
async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    const user = currentUser();
    if (!user) throw new ApiError('Enter your name in the header first.', 0, 'missing_user');
    headers[USER_HEADER] = user;
  }
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method, headers, cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(`Network error: ${err.message}`, 0, 'network');
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    /* a non-JSON body (proxy error page): reported through the status below */
  }
  if (!response.ok) {
    const message = data?.error || `HTTP ${response.status} ${response.statusText}`.trim();
    throw new ApiError(message, response.status, data?.code || 'http_error');
  }
  return { data, text };
}

export async function getNodes() {
  return (await request('GET', '/api/v1/nodes')).data.nodes;
}

/** The calendar of [start, end) as {data, text}; the text lets callers skip re-renders. */
export function getCalendar(startIso, endIso, nodeIds = []) {
  const query = new URLSearchParams({ start: startIso, end: endIso });
  if (nodeIds.length) query.set('node_ids', nodeIds.join(','));
  return request('GET', `/api/v1/calendar?${query}`);
}

export async function createBooking(payload) {
  return (await request('POST', '/api/v1/bookings', payload)).data;
}

export async function releaseBooking(id) {
  return (await request('POST', `/api/v1/bookings/${encodeURIComponent(id)}/release`)).data;
}

export async function cancelBooking(id) {
  return (await request('POST', `/api/v1/bookings/${encodeURIComponent(id)}/cancel`)).data;
}

/** Move the booking's end (extend or shorten); `endIso` is the new end. */
export async function changeBookingEnd(id, endIso) {
  return (await request('PATCH', `/api/v1/bookings/${encodeURIComponent(id)}`, { end: endIso })).data;
}

/** Running jobs as {data, text} (the text lets callers skip re-renders). */
export function getRunningJobs() {
  return request('GET', '/api/v1/jobs?state=running&limit=1000');
}
