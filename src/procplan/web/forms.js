// forms.js — small pieces shared by the planner's forms (the booking dialog, the details
// panel's edit form, the weekly-series preview): an error shown inside a form, and the GPU
// checkboxes of a node. Kept apart so that panels.js and edit.js need not import each other.
import { el } from './dom.js';

/**
 * Show `message` inside `form`, above its buttons (role="alert": announced; focused, so that
 * a keyboard user lands on it). Replaces an earlier one.
 */
export function showError(form, message) {
  clearError(form);
  const error = el('p', { class: 'form-error', role: 'alert', tabindex: '-1' }, message);
  form.querySelector(':scope > .actions').before(error);
  error.focus();
}

export function clearError(form) {
  form.querySelector(':scope > .form-error')?.remove();
}

/** Fill the <fieldset> `box` with a checkbox per GPU of `node`, those in `checked` ticked. */
export function fillGpuChecks(box, node, checked, { disabled = false } = {}) {
  box.replaceChildren(el('legend', {}, 'GPUs'), ...node.gpus.map((gpu) => el('label', { class: 'check' },
    el('input', { type: 'checkbox', name: 'gpu', value: gpu.id, checked: checked.includes(gpu.id), disabled }),
    ` GPU ${gpu.index} (${gpu.kind})`)));
}

/** The ids of the ticked GPU checkboxes inside `root`. */
export function checkedGpus(root) {
  return [...root.querySelectorAll('input[name=gpu]:checked')].map((box) => box.value);
}
