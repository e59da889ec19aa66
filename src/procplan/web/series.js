// series.js — a weekly series in the booking dialog (issue #17). With "Repeat weekly until"
// set, the dialog's button first asks the server what the series would do (POST
// /api/v1/bookings with `dry_run`), lists every occurrence and every refused one with the
// server's reason, and only then offers "Book all N". Why a preview: the API books a series
// all or nothing, so the user sees which weeks clash (and with whom) before booking.
import { el } from './dom.js';
import { WEEK, addDays, fmtDateTime, fromDateValue, parseIso, toIso } from './time.js';

/**
 * Wire the series part of the booking `form` (its `repeat_until` date field and a preview
 * area). `dryRun(payload)` resolves to the server's preview ({bookings, conflicts}) or throws
 * an ApiError. Returns {repeatFor(payload), ready(payload), review(payload), reset()}.
 */
export function setupSeries(form, dryRun) {
  const field = form.elements.repeat_until;
  const button = form.querySelector('[type=submit]');
  const area = el('div', { class: 'series-preview', role: 'status', 'aria-live': 'polite', hidden: true });
  form.querySelector(':scope > .actions').before(area);
  let checked = null; // the payload (JSON) whose preview was clean: "Book all N" books it

  function label() {
    button.textContent = field.value ? 'Check the series…' : 'Book';
  }
  function reset() {
    checked = null;
    form.classList.remove('series-refused');
    area.hidden = true;
    area.replaceChildren();
    label();
  }
  // Any change makes a shown preview stale.
  form.addEventListener('input', () => (area.hidden ? label() : reset()));

  function show(bookings, conflicts) {
    const rows = [
      ...bookings.map((b) => ({ start: b.start, end: b.end, error: null })),
      ...conflicts.map((c) => ({ start: c.start, end: c.end, error: c.error || c.code || 'refused' })),
    ].sort((a, b) => parseIso(a.start) - parseIso(b.start));
    const total = rows.length;
    const head = conflicts.length
      ? `${conflicts.length} of ${total} weekly bookings would be refused, so none can be made: change the slot or the end date.`
      : `${total} weekly booking${total === 1 ? '' : 's'}:`;
    area.replaceChildren(el('p', { class: conflicts.length ? 'series-head refused' : 'series-head' }, head),
      el('ul', { class: 'series-list' }, rows.map((row) => el('li', { class: row.error ? 'refused' : 'ok' },
        el('span', { class: 'series-when' }, `${fmtDateTime(parseIso(row.start))} – ${fmtDateTime(parseIso(row.end))}`),
        row.error ? el('span', { class: 'series-why' }, `refused: ${row.error}`) : el('span', { class: 'series-ok' }, ' ✓')))));
    area.hidden = false;
    form.classList.toggle('series-refused', conflicts.length > 0); // the list says it all
  }

  return {
    /**
     * The `repeat` of `payload` ({every, until}), or null without a date. The server repeats
     * through a UTC day; the date picked is a day of the display zone, so `until` is sent as
     * the start of the last occurrence that begins by the end of that day (whose UTC day
     * holds it, and the next one is a week later).
     */
    repeatFor(payload) {
      if (!field.value) return null;
      const dayEnd = addDays(fromDateValue(field.value), 1);
      const start = parseIso(payload.start);
      const weeks = Math.floor((dayEnd - 1 - start) / WEEK);
      const until = Number.isFinite(weeks) && weeks >= 0 ? toIso(start + weeks * WEEK) : field.value;
      return { every: 'week', until };
    },
    /** True when `payload`'s preview was shown and clean: book it now. */
    ready: (payload) => checked !== null && checked === JSON.stringify(payload),
    /** Ask for the preview and show it; resolves to an error message or null. */
    async review(payload) {
      button.disabled = true;
      try {
        const { bookings = [], conflicts = [] } = await dryRun({ ...payload, dry_run: true });
        show(bookings, conflicts);
        checked = conflicts.length ? null : JSON.stringify(payload);
        button.textContent = conflicts.length ? 'Check again' : `Book all ${bookings.length}`;
        return null;
      } catch (err) {
        reset();
        return err.message || 'The series could not be checked.';
      } finally {
        button.disabled = false;
      }
    },
    reset,
  };
}
