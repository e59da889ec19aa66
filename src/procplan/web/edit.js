// edit.js — the details panel's edit form (issue #17): change a booking's start, end, GPUs,
// label and priority in one PATCH. It is the keyboard and touch path to what dragging a bar
// does (drag.js), and the only way to change a label or priority. A booking that has started
// keeps its start and GPUs (the server refuses to change them): they show read-only. The
// server's refusal (who holds the GPUs, when they are next free) shows inside the form.
import { el } from './dom.js';
import { checkedGpus, clearError, fillGpuChecks, showError } from './forms.js';
import { MINUTE, fromInputValue, parseIso, toInputValue, toIso, zoneName } from './time.js';

const PRIORITIES = ['low', 'medium', 'high'];

/**
 * Add the edit form to the details `panel`, after its list. `save(id, changes)` resolves true
 * (done) or the server's message; `nodeOf(nodeId)` gives the node (its GPUs) or null;
 * `closed(saved)` runs when the form closes. Returns {open(booking), close(), editing()}.
 */
export function setupEditForm(panel, { save, nodeOf, closed = () => {} }) {
  const form = buildForm();
  panel.querySelector('#details-list').after(form);
  let booking = null;

  function open(next) {
    booking = next;
    const started = parseIso(next.start) <= Date.now();
    const node = nodeOf(next.node_id) ?? { gpus: next.gpu_ids.map((id, index) => ({ id, index, kind: id })) };
    clearError(form);
    form.elements.start.value = toInputValue(parseIso(next.start));
    form.elements.end.value = toInputValue(parseIso(next.end));
    form.elements.start.readOnly = started;
    fillGpuChecks(form.querySelector('.edit-gpus'), node, next.gpu_ids, { disabled: started });
    form.elements.label.value = next.label || '';
    form.elements.priority.value = PRIORITIES.includes(next.priority) ? next.priority : 'medium';
    form.querySelector('.edit-started').hidden = !started;
    form.hidden = false;
    (started ? form.elements.end : form.elements.start).focus();
  }

  function close(saved = false) {
    if (form.hidden) return;
    form.hidden = true;
    booking = null;
    closed(saved);
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const changes = readChanges(form, booking);
    if (typeof changes === 'string') {
      showError(form, changes);
      return;
    }
    if (!Object.keys(changes).length) {
      close(false);
      return;
    }
    const button = form.querySelector('[type=submit]');
    button.disabled = true;
    try {
      const done = await save(booking.id, changes);
      if (done === true) close(true);
      else showError(form, typeof done === 'string' ? done : 'The change failed.');
    } finally {
      button.disabled = false;
    }
  });
  form.querySelector('.edit-cancel').addEventListener('click', () => close(false));
  form.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape') return;
    ev.stopPropagation(); // Escape leaves the form, not the whole panel
    close(false);
  });

  return { open, close, editing: () => (form.hidden ? null : booking?.id ?? null) };
}

function buildForm() {
  const field = (text, input) => el('label', {}, text, input);
  const zoned = (text, input) => el('label', {},
    el('span', {}, `${text} (`, el('span', { class: 'tz-name' }, zoneName()), ')'), input);
  return el('form', { class: 'edit-form', hidden: true, 'aria-label': 'Edit booking', novalidate: true },
    el('p', { class: 'edit-started muted', hidden: true },
      'It has started: its start and GPUs can no longer change.'),
    el('div', { class: 'form-row edit-times' },
      zoned('Start', el('input', { type: 'datetime-local', name: 'start', step: 60, required: true })),
      zoned('End', el('input', { type: 'datetime-local', name: 'end', step: 60, required: true }))),
    el('fieldset', { class: 'gpu-checks edit-gpus' }),
    el('div', { class: 'form-row' },
      field('Priority', el('select', { name: 'priority' },
        PRIORITIES.map((p) => el('option', { value: p }, p[0].toUpperCase() + p.slice(1))))),
      el('label', { class: 'grow' }, 'Label',
        el('input', { type: 'text', name: 'label', maxlength: 200, autocomplete: 'off' }))),
    el('div', { class: 'actions' },
      el('button', { type: 'button', class: 'edit-cancel' }, 'Cancel'),
      el('button', { type: 'submit', class: 'primary' }, 'Save')));
}

/** The PATCH body (only what changed; {} when nothing did), or an error message. */
function readChanges(form, booking) {
  const start = fromInputValue(form.elements.start.value);
  const end = fromInputValue(form.elements.end.value);
  const gpuIds = checkedGpus(form);
  if (Number.isNaN(start) || Number.isNaN(end)) return 'Start and end must be valid dates.';
  if (end <= start) return 'End must be after start.';
  if (!gpuIds.length) return 'Choose at least one GPU.';
  const changes = {};
  const started = form.elements.start.readOnly;
  if (!started && start !== toMinute(booking.start)) changes.start = toIso(start);
  if (end !== toMinute(booking.end)) changes.end = toIso(end);
  if (!started && [...gpuIds].sort().join() !== [...booking.gpu_ids].sort().join()) changes.gpu_ids = gpuIds;
  const label = form.elements.label.value.trim();
  if (label !== (booking.label || '')) changes.label = label;
  if (form.elements.priority.value !== booking.priority) changes.priority = form.elements.priority.value;
  return changes;
}

/** An ISO instant floored to its minute (what a datetime-local input shows of it). */
function toMinute(iso) {
  return Math.floor(parseIso(iso) / MINUTE) * MINUTE;
}
