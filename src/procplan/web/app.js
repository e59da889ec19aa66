// app.js — ProcPlan weekly planner: state, header controls, the 15 s live refresh, and the
// glue between the grid, the booking dialog, the details panel and the API. Each refresh also
// pulls the running jobs (drawn on the grid) and the node list (foreign / flagged GPUs).
import {
  cancelBooking, changeBookingEnd, createBooking, currentUser, getCalendar, getNodes, getRunningJobs, releaseBooking, saveUser,
} from './api.js';
import { loadPref, savePref, toast } from './dom.js';
import { attachInteractions, markMine, renderGrid, sameCell, setFolded, updateNowLine } from './grid.js';
import { setupBookingDialog, setupDetails } from './panels.js';
import { WEEK, fmtClock, fmtWeek, mondayOf, toIso, todayIndex } from './time.js';

const REFRESH_MS = 15_000;
const FOLDED_KEY = 'procplan.foldedNodes';
const MINE_KEY = 'procplan.mineOnly';
const $ = (id) => document.getElementById(id);

const state = {
  monday: mondayOf(Date.now()),
  nodeId: '',        // '' = all nodes
  nodes: [],         // from /api/v1/nodes (refreshed with the calendar)
  jobs: [],          // running jobs from /api/v1/jobs?state=running
  renderedKey: '',   // calendar JSON text + today's column: re-render only when it changes
  bookings: new Map(), // booking id -> booking assembled from the calendar's claims
  loadSeq: 0,        // drops responses of superseded requests
  failing: false,    // the last refresh failed (toast once, not every 15 s)
  folded: new Set(asList(loadPref(FOLDED_KEY, []))), // node ids whose GPU rows are hidden
};

const table = $('grid');
const grid = attachInteractions(table, { onSelect: openBooking, onBooking: showBooking, onJob: showJob, onFold: fold });
const openDialog = setupBookingDialog($('booking-dialog'), submitBooking, (opener) => sameCell(table, opener));
const details = setupDetails($('details'), { onRelease: release, onCancel: cancel, onExtend: extend });

function asList(value) {
  return Array.isArray(value) ? value.filter((v) => typeof v === 'string') : [];
}

/** Fetch the week's calendar; rebuild the grid only if the data (or today) changed. */
async function refresh() {
  if (grid.active) return; // never pull the rows from under a drag; the next tick catches up
  const seq = ++state.loadSeq;
  const ids = state.nodeId ? [state.nodeId] : [];
  try {
    // Jobs and nodes are extras: when one fails the grid keeps their last known state.
    const [{ data, text }, jobs, nodes] = await Promise.all([
      getCalendar(toIso(state.monday), toIso(state.monday + WEEK), ids),
      getRunningJobs().then(({ data: body }) => body.jobs).catch(() => null),
      getNodes().catch(() => null),
    ]);
    if (seq !== state.loadSeq) return;
    if (jobs) state.jobs = jobs;
    if (nodes) state.nodes = nodes;
    const now = Date.now();
    const key = `${todayIndex(state.monday, now)}|${jobsKey(state.jobs, now)}|${usageKey(state.nodes)}|${text}`;
    if (key !== state.renderedKey && !grid.active) {
      state.renderedKey = key;
      state.bookings = indexBookings(data);
      renderGrid(table, data, state.monday, now, {
        folded: state.folded, user: currentUser(), jobs: state.jobs, nodes: state.nodes,
      });
      syncDetails();
    }
    updateNowLine(table, now);
    $('updated').textContent = `Updated ${fmtClock(now)} UTC · refreshes every 15 s`;
    if (state.failing) toast('Connection to the server restored.', 'success');
    state.failing = false;
  } catch (err) {
    if (seq !== state.loadSeq) return;
    if (!state.failing) toast(`Could not load the calendar: ${err.message}`, 'error');
    state.failing = true;
  }
}

/** What the grid draws of the running jobs (a job past its limit grows with "now", per hour). */
function jobsKey(jobs, now) {
  const overdue = jobs.some((j) => j.time_limit_s && Date.parse(j.started_at) + j.time_limit_s * 1000 < now);
  return JSON.stringify([overdue ? Math.floor(now / 3_600_000) : 0,
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

function setWeek(monday) {
  state.monday = monday;
  $('week-label').textContent = `${fmtWeek(monday)} (UTC)`;
  refresh();
}

function openBooking(selection) {
  const node = state.nodes.find((n) => n.id === selection.nodeId);
  if (!node) {
    toast('The node list is not loaded; reload the page.', 'error');
    return;
  }
  if (!currentUser()) {
    toast('Enter your name in the header before booking.', 'error');
    $('user-name').focus();
    return;
  }
  openDialog(node, selection);
}

/** POST the booking; toast the result. Resolves true when the dialog may close. */
async function submitBooking(payload) {
  try {
    const { booking, conflicts_with_jobs: conflicts = [] } = await createBooking(payload);
    const gpus = booking.gpu_ids.length === 1 ? '1 GPU' : `${booking.gpu_ids.length} GPUs`;
    toast(`Booked #${booking.id}: ${gpus} on ${booking.node_id}.`, 'success');
    if (conflicts.length) toast(`This booking will preempt ${conflicts.length} running job(s).`, 'info');
    await refresh();
    return true;
  } catch (err) {
    toast(err.message, 'error');
    return false;
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
    toast(`Booking #${booking.id} now ends ${endIso.slice(0, 16).replace('T', ' ')} UTC.`, 'success');
    details.show(booking, { focus: false });
    await refresh();
  } catch (err) {
    toast(err.message, 'error');
  }
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

async function loadNodes() {
  try {
    state.nodes = await getNodes();
  } catch (err) {
    toast(`Could not load nodes: ${err.message}`, 'error');
    return;
  }
  const select = $('node-filter');
  for (const node of state.nodes) select.append(new Option(`${node.name} (${node.id})`, node.id));
}

function wireHeader() {
  $('week-prev').addEventListener('click', () => setWeek(state.monday - WEEK));
  $('week-next').addEventListener('click', () => setWeek(state.monday + WEEK));
  $('week-today').addEventListener('click', () => setWeek(mondayOf(Date.now())));
  $('node-filter').addEventListener('change', (ev) => {
    state.nodeId = ev.target.value;
    refresh();
  });
  const user = $('user-name');
  user.value = currentUser();
  user.addEventListener('input', () => {
    saveUser(user.value);
    markMine(table, currentUser());
  });
  const mine = $('mine-toggle');
  mine.addEventListener('click', () => setMineOnly(mine.getAttribute('aria-pressed') !== 'true'));
  setMineOnly(loadPref(MINE_KEY, false) === true);
}

function startLiveRefresh() {
  setInterval(() => {
    if (document.visibilityState === 'visible') refresh();
  }, REFRESH_MS);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') refresh();
  });
}

wireHeader();
await loadNodes();
setWeek(state.monday);
startLiveRefresh();
