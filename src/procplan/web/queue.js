// queue.js — the job queue: pending jobs in queue order with the scheduler's reason and
// estimated start (shown as given, never recomputed), running jobs with node, GPUs, elapsed time
// and limit; the signed-in user may cancel their own jobs (an admin anyone's, marked "as
// admin"). Refreshes every 5 s; rows are rebuilt only when their job changed, elapsed times
// tick in place.
import { el, toast } from './dom.js';
import { fetchJson, fmtDuration, fmtInstant, poll, setStatus, syncRows, updatedText } from './live.js';
import { mayChange, showSession } from './session.js';
import { mountZoneSwitch } from './zone.js';

const $ = (id) => document.getElementById(id);
const LIMIT = 200;
const RECENT = 50; // finished jobs shown, newest first
const FINISHED = 'completed,failed,cancelled,preempted,lost';

let me = null; // GET /api/v1/me: who may cancel which job (asked once, before the first poll)
let refreshNow = () => {};
mountZoneSwitch(); // a switch reloads the page: every time is drawn again
showSession().then((found) => {
  me = found;
  refreshNow = poll(refresh);
});

async function refresh() {
  try {
    const [pending, running, recent] = await Promise.all([
      fetchJson(`api/v1/jobs?state=pending&limit=${LIMIT}`),
      fetchJson(`api/v1/jobs?state=running&limit=${LIMIT}`),
      fetchJson(`api/v1/jobs?state=${FINISHED}&limit=${RECENT}`),
    ]);
    render(pending.data, running.data);
    renderRecent(recent.data);
    setStatus($('status'), null, updatedText());
  } catch (err) {
    setStatus($('status'), err);
  }
}

function render(pending, running) {
  const user = me?.user || '';
  const queued = [...pending.jobs].sort((a, b) => (a.queue_position || 1e9) - (b.queue_position || 1e9) || Number(a.id) - Number(b.id));
  const sig = (job) => `${user}|${me?.role}|${JSON.stringify(job)}`;
  syncRows($('pending').tBodies[0], queued, (j) => j.id, sig, pendingRow);
  const rows = syncRows($('running').tBodies[0], running.jobs, (j) => j.id, sig, runningRow);
  const now = Date.now();
  rows.forEach((row, i) => { row.querySelector('.elapsed').textContent = elapsed(running.jobs[i], now); });
  const more = (page, shown) => (page.total > shown ? ` (showing ${shown})` : '');
  $('pending-count').textContent = `(${pending.total})${more(pending, queued.length)}`;
  $('running-count').textContent = `(${running.total})${more(running, running.jobs.length)}`;
  $('pending-empty').hidden = queued.length > 0;
  $('running-empty').hidden = running.jobs.length > 0;
  $('pending').hidden = queued.length === 0;
  $('running').hidden = running.jobs.length === 0;
  const gpus = running.jobs.reduce((n, j) => n + (j.allocated_gpus?.length || j.gpu_count || 0), 0);
  $('summary').textContent = `${pending.total} pending · ${running.total} running on ${gpus} GPU${gpus === 1 ? '' : 's'}`
    + (user ? ` · you are ${user}` : (me ? ' · sign in to cancel your jobs' : ''));
}

/** The jobs that ended, newest first, each with its state and why it ended. */
function renderRecent(page) {
  const ended = (job) => Date.parse(job.completed_at || job.submitted_at || '') || 0;
  const jobs = [...page.jobs].sort((a, b) => ended(b) - ended(a) || Number(b.id) - Number(a.id));
  syncRows($('recent').tBodies[0], jobs, (j) => j.id, (j) => JSON.stringify(j), recentRow);
  $('recent-count').textContent = `(${page.total})${page.total > jobs.length ? ` (showing ${jobs.length})` : ''}`;
  $('recent-empty').hidden = jobs.length > 0;
  $('recent').hidden = jobs.length === 0;
}

function endText(job) {
  const parts = [];
  if (job.exit_code !== null && job.exit_code !== undefined) parts.push(`exit code ${job.exit_code}`);
  if (job.message) parts.push(job.message);
  return parts.join(' · ') || '—';
}

function recentRow(job) {
  return el('tr', { dataset: { job: job.id, state: job.state } },
    jobCell(job),
    el('td', { class: 'user' }, job.user),
    el('td', { class: 'name' }, job.name || '—'),
    el('td', { class: `job-state state-${job.state}` }, job.state),
    el('td', {}, job.completed_at ? fmtInstant(job.completed_at) : '—'),
    el('td', { class: 'reason' }, endText(job)));
}

function jobCell(job) {
  return el('td', { class: 'job-id' }, `#${job.id}`, job.kind === 'interactive' ? el('span', { class: 'tag' }, 'interactive') : null);
}

function gpuText(job) {
  const want = `${job.gpu_count}${job.nodes > 1 ? ` × ${job.nodes} nodes` : ''}`;
  return job.gpu_type ? `${want} ${job.gpu_type}` : want;
}

// What the job waits for, as the planner saw it: the jobs and bookings in its way.
function waitsLine(job) {
  const waits = job.waits_for || {};
  const names = [...(waits.jobs || []).map((id) => `#${id}`), ...(waits.bookings || []).map((id) => `booking ${id}`)];
  return names.length ? el('div', { class: 'waits' }, `in the way: ${names.join(', ')}`) : null;
}

function pendingRow(job) {
  return el('tr', { dataset: { job: job.id } },
    el('td', { class: 'num' }, job.queue_position ? String(job.queue_position) : '—'),
    jobCell(job),
    el('td', { class: 'user' }, job.user),
    el('td', { class: 'name' }, job.name || '—'),
    el('td', { class: 'num' }, gpuText(job)),
    el('td', { class: 'reason', title: job.reason || '' }, job.reason_text || job.reason || '—', waitsLine(job)),
    el('td', { class: 'eta' }, job.estimated_start ? fmtInstant(job.estimated_start) : 'unknown'),
    el('td', { class: 'actions-cell' }, cancelButton(job)));
}

function runningRow(job) {
  const where = job.node_name || job.node_ids?.join(', ') || '—';
  const gpus = job.gpu_indices?.length ? `GPU ${job.gpu_indices.join(', ')}` : gpuText(job);
  return el('tr', { dataset: { job: job.id } },
    jobCell(job),
    el('td', { class: 'user' }, job.user),
    el('td', { class: 'name' }, job.name || '—'),
    el('td', { class: 'where', title: (job.allocated_gpus || []).join(', ') }, `${where} · ${gpus}`),
    el('td', {}, fmtInstant(job.started_at)),
    el('td', { class: 'num elapsed' }),
    el('td', { class: 'num' }, job.time_limit_s ? fmtDuration(job.time_limit_s) : 'none'),
    el('td', { class: 'actions-cell' }, cancelButton(job)));
}

function elapsed(job, now) {
  if (!job.started_at) return '—';
  const seconds = (now - Date.parse(job.started_at)) / 1000;
  const text = fmtDuration(seconds);
  return job.time_limit_s ? `${text} (${Math.min(999, Math.round((100 * seconds) / job.time_limit_s))} %)` : text;
}

function cancelButton(job) {
  const may = mayChange(me, job.user);
  if (!may) return null;
  const asAdmin = may === 'admin';
  const label = `Cancel job ${job.id}${job.name ? ` (${job.name})` : ''}${asAdmin ? ` of ${job.user}, as admin` : ''}`;
  return el('button', {
    type: 'button', class: asAdmin ? 'danger as-admin-button' : 'danger', 'aria-label': label,
    title: asAdmin ? `${job.user}’s job: you cancel it as admin` : null,
    onclick: async (event) => {
      const verb = job.state === 'running' ? 'Stop the running' : 'Withdraw the pending';
      const whose = asAdmin ? ` of ${job.user} (as admin)` : '';
      if (!window.confirm(`${verb} job #${job.id}${job.name ? ` "${job.name}"` : ''}${whose}?`)) return;
      event.currentTarget.disabled = true;
      try {
        await fetchJson(`api/v1/jobs/${encodeURIComponent(job.id)}`, { method: 'DELETE' });
        toast(`Job #${job.id} cancelled.`, 'success');
      } catch (err) {
        toast(err.message, 'error');
      }
      refreshNow();
    },
  }, 'Cancel', asAdmin ? el('span', { class: 'as-admin' }, ' (as admin)') : null);
}
