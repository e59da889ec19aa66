// app.js — ProcPlan planner: state, the live refresh (every 5 s, conditional requests), and
// the glue between the header controls, the grid, the booking dialog, the details panel and
// the API. Each refresh also pulls the running jobs (drawn on the grid) and the node list
// (foreign / flagged GPUs, the node filter). Bookings are made as the signed-in user
// (session.js); only one's own bookings, or everyone's for an admin, offer changes.
import {
  cancelBooking, changeBookingEnd, checkBooking, createBooking, getCalendar, getNodes, getRunningJobs, releaseBooking,
} from './api.js';
import {
  bindShortcuts, bindViewControls, readLocation, setBusy, setupHelp, showView, syncNodeFilter,
} from './controls.js';
import { loadPref, savePref, toast } from './dom.js';
import { markMine, renderGrid, sameTrack, setFolded, updateNowLine } from './grid.js';
import { addFeedButton } from './feeds.js';
import { bookingChanges } from './manage.js';
import { setupBookingDialog, setupDetails } from './panels.js';
import { attachInteractions } from './select.js';
import { bindSignInLink, mayChange, showSession, signInHref } from './session.js';
import { MINUTE, addDays, fmtClock, fmtWhen, parseIso, toIso, zoneOffset } from './time.js';
import {
  GPU_COL_PX, makeView, scrollLeftFor, shiftView, tableWidth, todayColumn,
} from './views.js';
import { mountZoneSwitch } from './zone.js';

const REFRESH_MS = 5_000;
const FOLDED_KEY = 'procplan.foldedNodes';
const MINE_KEY = 'procplan.mineOnly';
const NODE_KEY = 'procplan.nodeFilter';
const $ = (id) => document.getElementById(id);

const start = readLocation(Date.now());
const state = {
  view: makeView(start.kind, start.at),
  at: start.at,      // the date the user went to: the year view scrolls to it
  scrollPending: true, // scroll the year view to `at` after the next render
  nodeId: String(loadPref(NODE_KEY, '')), // the node filter ('' = all nodes), remembered
  nodes: [],         // from /api/v1/nodes (refreshed with the calendar)
  jobs: [],          // running jobs from /api/v1/jobs?state=running
  renderedKey: '',   // what the last render drew: skip the render when nothing changed
  bookings: new Map(), // booking id -> booking assembled from the calendar's claims
  loadSeq: 0,        // drops responses of superseded requests
  failing: false,    // the last refresh failed (toast once, not every tick)
  folded: new Set(asList(loadPref(FOLDED_KEY, []))), // node ids whose GPU rows are hidden
  me: null,          // GET /api/v1/me once the server answered (null until then)
};

const table = $('grid');
const wrap = $('grid-wrap');
const changes = bookingChanges({ // drag to move / resize, the edit form, weekly series (manage.js)
  bookings: () => state.bookings, me: () => state.me, details: () => details, refresh: () => refresh(),
});
const grid = attachInteractions(table, {
  onSelect: openBooking, onBooking: showBooking, onJob: showJob, onFold: fold,
  announce: (text) => { $('grid-status').textContent = text; },
  movable: changes.movable, onMove: changes.move,
});
const openDialog = setupBookingDialog(
  $('booking-dialog'), submitBooking, (opener) => sameTrack(table, opener), previewBooking, changes.dryRun,
);
const details = setupDetails($('details'), {
  onRelease: release, onCancel: cancel, onExtend: extend, mayChange: (booking) => mayChange(state.me, booking.user),
  onEdit: changes.save, nodeOf: (id) => state.nodes.find((n) => n.id === id) ?? null,
});

/** The signed-in user's name ('' when nobody, or not known yet). */
function myName() {
  return state.me?.user || '';
}

function asList(value) {
  return Array.isArray(value) ? value.filter((v) => typeof v === 'string') : [];
}

/**
 * Fetch the view's calendar, the running jobs and the nodes; redraw what changed. `busy`
 * shows the loading bar (a view change, not the background refresh).
 */
async function refresh({ busy = false } = {}) {
  if (grid.active) return; // never pull the rows from under a drag; the next tick catches up
  const seq = ++state.loadSeq;
  const { view } = state;
  if (busy) setBusy(true);
  try {
    // Jobs and nodes are extras: when one fails the grid keeps their last known state.
    const [{ data, text }, jobs, nodes] = await Promise.all([
      getCalendar(toIso(view.start), toIso(view.end), state.nodeId ? [state.nodeId] : []),
      getRunningJobs().then(({ data: body }) => body.jobs).catch(() => null),
      getNodes().catch(() => null),
    ]);
    if (seq !== state.loadSeq) return;
    if (jobs) state.jobs = jobs;
    if (nodes) {
      state.nodes = nodes;
      syncNodeFilter($('node-filter'), nodes, state.nodeId);
    }
    draw(data, text);
    if (state.failing) toast('Connection to the server restored.', 'success');
    state.failing = false;
  } catch (err) {
    if (seq !== state.loadSeq) return;
    if (err.code === 'unknown_node' && state.nodeId) { // the remembered node is gone
      chooseNode('');
      return;
    }
    if (!state.failing) toast(`Could not load the calendar: ${err.message}`, 'error');
    state.failing = true;
  } finally {
    if (seq === state.loadSeq) setBusy(false);
  }
}

/** Render when the data (or today, or the width) changed; then the now line and scrolling. */
function draw(data, text) {
  const { view } = state;
  const now = Date.now();
  const minWidth = parseFloat(getComputedStyle(table).minWidth) || 0; // the week view's floor
  const trackPx = (tableWidth(view) ?? Math.max(minWidth, wrap.clientWidth)) - GPU_COL_PX;
  const key = [view.key, todayColumn(view, now), trackPx, jobsKey(state.jobs, now), usageKey(state.nodes), text].join('|');
  if (key !== state.renderedKey && !grid.active) {
    state.renderedKey = key;
    state.bookings = indexBookings(data);
    const hadFocus = Boolean(document.activeElement?.matches('#grid td.track'));
    renderGrid(table, data, view, now, {
      folded: state.folded, user: myName(), jobs: state.jobs, nodes: state.nodes, trackPx,
    });
    grid.restore(hadFocus);
    syncDetails();
    markPainted();
  }
  updateNowLine(table, now);
  if (state.scrollPending) scrollToDate();
  $('updated').textContent = `Updated ${fmtClock(now)} ${zoneOffset(now)} · refreshes every ${REFRESH_MS / 1000} s`;
}

/**
 * Performance marks for real-user timing (and bench/web_render.py): the grid's DOM is built;
 * then the grid is painted, with the bars of the rows in sight, which are built when the first
 * frame finds them visible (an IntersectionObserver task) and painted in the second.
 */
function markPainted() {
  performance.mark('procplan:grid-rendered');
  requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => performance.mark('procplan:grid-painted'), 0)));
}

/** Scroll the year view so the date the user went to is in sight. */
function scrollToDate() {
  state.scrollPending = false;
  wrap.scrollLeft = scrollLeftFor(state.view, state.at, wrap.clientWidth);
}

/**
 * What the grid draws of the running jobs: a job's bar is split at "now" (the time it has run,
 * then its projected rest), so it is redrawn every few minutes while jobs run.
 */
function jobsKey(jobs, now) {
  return JSON.stringify([jobs.length ? Math.floor(now / 300_000) : 0,
    jobs.map((j) => [j.id, j.name, j.user, j.allocated_gpus, j.started_at, j.time_limit_s])]);
}

/** What the grid draws of the node list: the foreign / flagged GPUs and their process users. */
function usageKey(nodes) {
  return JSON.stringify(nodes.flatMap((n) => (n.gpus || [])
    .filter((g) => g.foreign || g.flags?.length)
    .map((g) => [g.id, g.foreign, g.flags, (g.processes || []).map((p) => [p.user, p.kind])])));
}

/** One booking object per booking id, with every GPU it holds in the calendar. */
function indexBookings(calendar) {
  const bookings = new Map();
  for (const node of calendar.nodes) {
    for (const gpu of node.gpus) {
      for (const claim of gpu.claims) {
        const known = bookings.get(claim.booking_id);
        if (known) known.gpu_ids.push(gpu.id);
        else bookings.set(claim.booking_id, { ...claim, id: claim.booking_id, node_id: node.id, gpu_ids: [gpu.id] });
      }
    }
  }
  return bookings;
}

function syncDetails() {
  const id = details.shownId();
  if (id !== null && state.bookings.has(id)) details.show(state.bookings.get(id), { focus: false });
  const jobId = details.shownJobId();
  const job = jobId !== null && state.jobs.find((j) => String(j.id) === jobId);
  if (job) details.showJob(job, { focus: false });
}

/**
 * Go to another view: `kind` ('week' / 'year', null: keep), `at` (a date to show, null: keep
 * the current one), `steps` (weeks or years forward / back).
 */
function go(kind, at, steps) {
  const old = state.view;
  const view = steps ? shiftView(old, steps) : makeView(kind ?? old.kind, at ?? state.at);
  // Prev / next keep the position inside the week or year (the same weekday, the same date).
  state.at = steps ? Math.min(view.start + (state.at - old.start), addDays(view.end, -1)) : (at ?? state.at);
  state.view = view;
  state.scrollPending = true;
  showView(view, state.at);
  if (view.key === old.key && state.renderedKey) {
    scrollToDate();
    return;
  }
  state.renderedKey = '';
  refresh({ busy: true });
}

function openBooking(selection) {
  const node = state.nodes.find((n) => n.id === selection.nodeId);
  if (!node) {
    toast('The node list is not loaded; reload the page.', 'error');
    return;
  }
  if (!state.me) {
    toast('Still checking who you are; try again in a moment.', 'info');
    return;
  }
  if (!myName()) {
    toast('Sign in to book GPUs: the planner is read-only until you do.', 'error', { href: signInHref(), text: 'Sign in' });
    return;
  }
  openDialog(node, startingNow(selection, Date.now()));
}

/**
 * A selection that holds the current moment starts now, to the minute (the native booking API's
 * precision): a tap on today must not ask for the hours already gone, which the server refuses
 * ("not more than 1 hour in the past").
 */
function startingNow(selection, now) {
  const minute = Math.floor(now / MINUTE) * MINUTE;
  if (selection.start < minute && minute < selection.end) return { ...selection, start: minute };
  return selection;
}

/** One running job a booking will preempt (rule 4), as plain text. */
function preemptText(job) {
  const gpus = asList(job.gpu_ids).join(', ');
  return `Job ${job.job_id} of ${job.user} on ${gpus} will be preempted: ${job.action}.`;
}

/** Ask the server what booking `payload` would do (shown in the form before booking). */
async function previewBooking(payload) {
  try {
    const { conflicts_with_jobs: conflicts = [] } = await checkBooking(payload);
    return (Array.isArray(conflicts) ? conflicts : []).map(preemptText).join(' ');
  } catch (err) {
    return err.message;
  }
}

/**
 * POST the booking; toast the success. Resolves true when the dialog may close, else the
 * server's message, which the dialog shows inside the form (a toast would sit behind it).
 */
async function submitBooking(payload) {
  try {
    const { booking, bookings = [], conflicts_with_jobs: conflicts = [] } = await createBooking(payload);
    const gpus = booking.gpu_ids.length === 1 ? '1 GPU' : `${booking.gpu_ids.length} GPUs`;
    const weeks = bookings.length > 1 ? ` and ${bookings.length - 1} more weekly` : '';
    toast(`Booked #${booking.id}${weeks}: ${gpus} on ${booking.node_id}.`, 'success');
    for (const job of Array.isArray(conflicts) ? conflicts : []) toast(preemptText(job), 'info');
    await refresh();
    return true;
  } catch (err) {
    return err.message || 'The booking failed.';
  }
}

function showBooking(id) {
  const booking = state.bookings.get(id);
  if (booking) details.show(booking);
}

function showJob(id) {
  const job = state.jobs.find((j) => String(j.id) === id);
  if (job) details.showJob(job);
}

async function release(id) {
  try {
    const booking = await releaseBooking(id);
    toast(`Booking #${booking.id} released.`, 'success');
    details.show(booking, { focus: false });
    await refresh();
  } catch (err) {
    toast(err.message, 'error');
  }
}

async function extend(id, endIso) {
  try {
    const booking = await changeBookingEnd(id, endIso);
    toast(`Booking #${booking.id} now ends ${fmtWhen(parseIso(endIso))}.`, 'success');
    details.show(booking, { focus: false });
    await refresh();
  } catch (err) {
    toast(err.message, 'error');
  }
}

/** After the time zone switch (zone.js): the same date (the address keeps it), redrawn in the other zone's days. */
function changeZone() {
  const { kind, at } = readLocation(Date.now()); // the address's date, read in the new zone
  state.at = at;
  state.view = makeView(kind, at);
  state.scrollPending = true;
  state.renderedKey = '';
  showView(state.view, state.at);
  refresh({ busy: true });
}

/** Fold (hide the GPU rows of) a node or unfold it; remembered across reloads. */
function fold(nodeId, folded) {
  if (folded) state.folded.add(nodeId);
  else state.folded.delete(nodeId);
  savePref(FOLDED_KEY, [...state.folded]);
  setFolded(table, nodeId, folded);
}

function setMineOnly(on) {
  $('mine-toggle').setAttribute('aria-pressed', String(on));
  table.classList.toggle('mine-only', on);
  savePref(MINE_KEY, on);
}

async function cancel(id) {
  try {
    const booking = await cancelBooking(id);
    toast(`Booking #${booking.id} cancelled.`, 'success');
    details.hide();
    await refresh();
  } catch (err) {
    toast(err.message, 'error');
  }
}

/** Show one node ('' = all); remembered across reloads. */
function chooseNode(nodeId) {
  state.nodeId = nodeId;
  $('node-filter').value = nodeId;
  savePref(NODE_KEY, nodeId);
  refresh({ busy: true });
}

function wireHeader() {
  bindViewControls(go);
  $('node-filter').addEventListener('change', (ev) => chooseNode(ev.target.value));
  const mine = $('mine-toggle');
  mine.addEventListener('click', () => setMineOnly(mine.getAttribute('aria-pressed') !== 'true'));
  setMineOnly(loadPref(MINE_KEY, false) === true);
  bindShortcuts({ help: setupHelp(), today: () => go(null, Date.now(), 0) });
  mountZoneSwitch(null, changeZone);
  // On a phone the rarer controls fold away behind "More" (phone.css) so the grid is on screen.
  const more = $('controls-toggle');
  more.addEventListener('click', () => {
    const open = document.body.classList.toggle('controls-open');
    more.setAttribute('aria-expanded', String(open));
    more.textContent = open ? 'Less ▴' : 'More ▾';
  });
}

function startLiveRefresh() {
  setInterval(() => {
    if (document.visibilityState === 'visible') refresh();
  }, REFRESH_MS);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') refresh();
  });
  let width = wrap.clientWidth;
  new ResizeObserver(() => {
    if (wrap.clientWidth === width) return;
    width = wrap.clientWidth;
    if (state.view.kind === 'week') refresh(); // labels inside / beside bars depend on the width
  }).observe(wrap);
}

/** Who is signed in: the header, "mine" marks, and what the details panel offers. */
async function loadIdentity() {
  const me = await showSession();
  state.me = me;
  const anonymous = !me.user;
  $('read-only').hidden = !anonymous;
  bindSignInLink($('read-only').querySelector('a'));
  $('mine-toggle').hidden = anonymous;
  if (anonymous) table.classList.remove('mine-only'); // nothing is "mine"; the choice stays saved
  table.classList.toggle('read-only', anonymous);
  addFeedButton($('session'), me, () => state.nodes);
  markMine(table, myName());
  syncDetails();
}

wireHeader();
showView(state.view, state.at);
loadIdentity();
refresh({ busy: true });
startLiveRefresh();
