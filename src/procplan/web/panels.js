// panels.js — the booking form (a modal <dialog>) and the booking details panel.
// Both only collect input and show data; app.js talks to the API through the callbacks.
import { el, loadPref, savePref } from './dom.js';
import { setupEditForm } from './edit.js';
import { checkedGpus, fillGpuChecks, showError } from './forms.js';
import { setupSeries } from './series.js';
import { HOUR, fmtWhen, fromInputValue, parseIso, toInputValue, toIso } from './time.js';

const LAST_KEY = 'procplan.lastBooking';

/**
 * Wire the booking dialog. `submit(payload)` resolves true on success (dialog closes) or
 * an error message (shown inside the form; the dialog stays open so the user can fix it). `refocus(opener)` finds where focus goes
 * back on close (the opener or its replacement after a re-render). `check(payload)` resolves
 * to what booking would do (running jobs it would preempt, or why it would be refused) as
 * plain text, shown before the user books and after every change. `dryRun(payload)` previews
 * a weekly series (series.js: "Repeat weekly until"). Returns open(node, selection).
 */
export function setupBookingDialog(dialog, submit, refocus = (opener) => opener, check = null, dryRun = null) {
  const form = dialog.querySelector('form');
  const notice = dialog.querySelector('#bf-check');
  const series = dryRun && form.elements.repeat_until ? setupSeries(form, dryRun) : null;
  let node = null;
  let opener = null;
  let asked = 0;

  async function preview() {
    if (!check || !node || !notice) return;
    const ticket = ++asked;
    const payload = readForm(form, node);
    const text = typeof payload === 'string' ? '' : await check(payload);
    if (ticket === asked) notice.textContent = text;  // a later change answered first: keep it
  }
  form.addEventListener('change', preview);

  dialog.querySelector('#bf-cancel').addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    const target = refocus(opener);
    if (target?.isConnected) target.focus();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const payload = readForm(form, node);
    if (typeof payload === 'string') {
      showError(form, payload);
      return;
    }
    const repeat = series?.repeatFor(payload);
    if (repeat) {
      payload.repeat = repeat;
      if (!series.ready(payload)) { // first show the occurrences; the button then books them
        const failed = await series.review(payload);
        if (failed) showError(form, failed);
        else form.querySelector('.form-error')?.remove();
        return;
      }
    }
    const button = form.querySelector('[type=submit]');
    button.disabled = true;
    try {
      const done = await submit(payload);
      if (done === true) {
        savePref(LAST_KEY, { label: payload.label ?? '', priority: payload.priority });
        dialog.close();
      } else {
        series?.reset(); // someone booked in between: check the series again
        showError(form, typeof done === 'string' ? done : 'The booking failed.');
      }
    } finally {
      button.disabled = false;
    }
  });

  return function open(targetNode, { gpuIds, start, end }) {
    node = targetNode;
    opener = document.activeElement;
    fillForm(form, node, gpuIds, start, end);
    if (form.elements.repeat_until) form.elements.repeat_until.value = '';
    series?.reset();
    if (notice) notice.textContent = '';
    dialog.showModal();
    preview();
  };
}

function fillForm(form, node, gpuIds, start, end) {
  const last = loadPref(LAST_KEY, {});
  form.querySelector('.form-error')?.remove();
  form.querySelector('#bf-node').textContent = `${node.name} (${node.id})`;
  fillGpuChecks(form.querySelector('#bf-gpus'), node, gpuIds);
  form.elements.start.value = toInputValue(start);
  form.elements.end.value = toInputValue(end);
  form.elements.priority.value = ['low', 'medium', 'high'].includes(last.priority) ? last.priority : 'medium';
  form.elements.label.value = typeof last.label === 'string' ? last.label : '';
}

/** The POST /api/v1/bookings body, or an error message for the user. */
function readForm(form, node) {
  const gpuIds = checkedGpus(form);
  const start = fromInputValue(form.elements.start.value);
  const end = fromInputValue(form.elements.end.value);
  if (!gpuIds.length) return 'Choose at least one GPU.';
  if (Number.isNaN(start) || Number.isNaN(end)) return 'Start and end must be valid dates.';
  if (end <= start) return 'End must be after start.';
  const label = form.elements.label.value.trim();
  return {
    node_id: node.id, gpu_ids: gpuIds, start: toIso(start), end: toIso(end),
    priority: form.elements.priority.value, label: label || undefined,
  };
}

/**
 * Wire the details panel. Callbacks get the booking id (onExtend also the new end, ISO);
 * cancelling asks "are you sure" inside the panel first. `mayChange(booking)` says whether the
 * viewer may change it: 'owner', 'admin' (the controls are then marked "as admin") or null
 * (no controls, only who may). Returns {show(booking), showJob(job), hide(), shownId(),
 * shownJobId()}; a booking is {id, node_id, gpu_ids, start, end, user, label, priority,
 * status}; a job is a /api/v1/jobs object, shown read-only. With `onEdit(id, changes)` (resolves
 * true or the server's message) an Edit button turns the panel into a form (edit.js);
 * `nodeOf(nodeId)` gives the node whose GPUs it offers.
 */
export function setupDetails(panel, {
  onRelease, onCancel, onExtend, onEdit = null, nodeOf = () => null, mayChange = () => 'owner',
}) {
  let booking = null;
  let job = null;
  let opener = null;
  const $ = (id) => panel.querySelector(`#${id}`);
  const extend = $('details-extend');
  const release = $('details-release');
  const cancel = $('details-cancel');
  const confirm = $('details-confirm');
  const adminMark = $('details-admin');
  const readOnly = $('details-readonly');
  const edit = $('details-edit');
  const editor = onEdit && edit ? setupEditForm(panel, { save: onEdit, nodeOf, closed: () => editing(false) }) : null;
  if (edit) edit.hidden = true;

  /** The edit form replaces the list and the buttons while it is open. */
  function editing(on) {
    $('details-list').hidden = on;
    $('details-actions').hidden = on;
    if (on) askCancel(false);
    else if (!panel.hidden && !edit.hidden) edit.focus();
  }

  function askCancel(ask) {
    confirm.hidden = !ask;
    cancel.setAttribute('aria-expanded', String(ask));
    if (ask) $('details-cancel-no').focus();
  }
  function hide() {
    if (panel.hidden) return;
    panel.hidden = true;
    editor?.close();
    const bar = booking && document.querySelector(`button.bar[data-booking="${Number(booking.id)}"]`);
    booking = null;
    job = null;
    (opener?.isConnected ? opener : bar)?.focus();
  }
  function open(focus) {
    if (focus) {
      opener = document.activeElement;
      panel.hidden = false;
      panel.focus();
    }
  }
  function showJob(next, { focus = true } = {}) {
    editor?.close();
    askCancel(false);
    booking = null;
    job = next;
    renderJob(panel, job);
    extend.hidden = true;
    release.hidden = true;
    cancel.hidden = true;
    if (edit) edit.hidden = true;
    adminMark.hidden = true;
    readOnly.hidden = true;
    open(focus);
  }
  function show(next, { focus = true } = {}) {
    if (next.id !== booking?.id) askCancel(false);
    booking = next;
    job = null;
    render(panel, booking);
    const may = mayChange(booking);
    const active = booking.status === 'active';
    const changeable = active && may !== null;
    const now = Date.now();
    // Release ends a running booking now; one that has not started is cancelled instead.
    release.hidden = !changeable || parseIso(booking.start) > now || parseIso(booking.end) <= now;
    extend.hidden = !changeable || parseIso(booking.end) <= now;
    cancel.hidden = !changeable;
    if (edit) edit.hidden = !editor || !changeable || parseIso(booking.end) <= now;
    const editingId = editor?.editing() ?? null;
    if (editingId !== null && (editingId !== booking.id || edit.hidden)) editor.close();
    if (!changeable) askCancel(false);
    const asAdmin = changeable && may === 'admin';
    for (const mark of panel.querySelectorAll('.actions .as-admin')) mark.hidden = !asAdmin;
    adminMark.hidden = !asAdmin;
    adminMark.textContent = asAdmin ? `As admin: this is ${booking.user}’s booking.` : '';
    readOnly.hidden = !active || may !== null;
    readOnly.textContent = readOnly.hidden ? '' : `Only ${booking.user} or an admin can change this booking.`;
    open(focus);
  }
  $('details-close').addEventListener('click', hide);
  panel.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') hide(); });
  release.addEventListener('click', () => onRelease(booking.id));
  extend.addEventListener('click', () => onExtend(booking.id, toIso(parseIso(booking.end) + HOUR)));
  cancel.addEventListener('click', () => askCancel(true));
  edit?.addEventListener('click', () => {
    editing(true);
    editor.open(booking);
  });
  $('details-cancel-no').addEventListener('click', () => {
    askCancel(false);
    cancel.focus();
  });
  $('details-cancel-yes').addEventListener('click', () => {
    askCancel(false);
    onCancel(booking.id);
  });
  return {
    show, showJob, hide,
    shownId: () => (panel.hidden ? null : booking?.id ?? null),
    shownJobId: () => (panel.hidden ? null : job?.id ?? null),
  };
}

/** A running job's details (read-only: jobs are managed from the queue page or the CLI). */
function renderJob(panel, job) {
  const start = parseIso(job.started_at);
  const limit = typeof job.time_limit_s === 'number' && job.time_limit_s > 0 ? job.time_limit_s : null;
  panel.querySelector('#details-title').textContent = job.name || `Job ${job.id}`;
  const rows = [
    ['Job', `${job.id} (running)`],
    ['User', job.user],
    ['Node', (job.node_ids?.length ? job.node_ids : [job.node_name || job.node_id || '—']).join(', ')],
    ['GPUs', (job.allocated_gpus || []).join(', ')],
    ['Started', Number.isFinite(start) ? fmtWhen(start) : '—'],
    ['Time limit', limit === null ? 'none' : `${Math.round(limit / 60)} min`],
    ['Ends by', limit === null ? '—' : fmtWhen(start + limit * 1000)],
  ];
  panel.querySelector('#details-list').replaceChildren(
    ...rows.flatMap(([term, value]) => [el('dt', {}, term), el('dd', {}, String(value))]));
  panel.className = 'details job-details';
}

function render(panel, booking) {
  panel.querySelector('#details-title').textContent = booking.label || '(no label)';
  const rows = [
    ['Booking', `#${booking.id}`],
    ['User', booking.user],
    ['Priority', booking.priority],
    ['Status', booking.status],
    ['Node', booking.node_id],
    ['GPUs', booking.gpu_ids.join(', ')],
    ['Start', fmtWhen(parseIso(booking.start))],
    ['End', fmtWhen(parseIso(booking.end))],
  ];
  panel.querySelector('#details-list').replaceChildren(
    ...rows.flatMap(([term, value]) => [el('dt', {}, term), el('dd', {}, String(value))]));
  panel.className = `details p-border-${['low', 'medium', 'high'].includes(booking.priority) ? booking.priority : 'unknown'}`;
}
