// manage.js — the planner's glue for changing bookings (issue #17): which bars may be dragged,
// sending a drag or the edit form as PATCH /api/v1/bookings/{id}, and previewing a weekly
// series. Kept out of app.js (which holds the planner's state and refresh) so each stays small;
// it reads that state only through the accessors it is given.
import { createBooking, patchBooking } from './api.js';
import { toast } from './dom.js';
import { mayChange } from './session.js';
import { fmtWhen, parseIso } from './time.js';

/**
 * `bookings()` (id -> booking of the shown calendar), `me()` (GET /api/v1/me or null),
 * `details()` (the details panel), `refresh()` (redraw from the server). Returns
 * {movable(id), move(id, changes), save(id, changes), dryRun(payload)}.
 */
export function bookingChanges({ bookings, me, details, refresh }) {
  /** The booking when the viewer may change it now (active, not over, theirs or as admin). */
  function movable(id) {
    const booking = bookings().get(id);
    if (!booking || booking.status !== 'active' || parseIso(booking.end) <= Date.now()) return null;
    return mayChange(me(), booking.user) === null ? null : booking;
  }

  async function apply(id, changes) {
    const booking = await patchBooking(id, changes);
    if (details().shownId() === id) details().show(booking, { focus: false });
    // Its new time may cover open-ended jobs of others: they are preempted when it begins.
    for (const job of Array.isArray(booking.conflicts_with_jobs) ? booking.conflicts_with_jobs : []) {
      toast(`Job ${job.job_id} of ${job.user} on ${(job.gpu_ids || []).join(', ')} will be preempted: ${job.action}.`, 'info');
    }
    await refresh();
    return booking;
  }

  /** A dropped drag: the outcome in a toast (a refusal names who is in the way). */
  async function move(id, changes) {
    try {
      const booking = await apply(id, changes);
      toast(`Booking #${booking.id} now ${fmtWhen(parseIso(booking.start))} to ${fmtWhen(parseIso(booking.end))}`
        + ` on ${booking.gpu_ids.join(', ')}.`, 'success');
    } catch (err) {
      toast(`Booking #${id} was not changed: ${err.message}`, 'error');
    }
  }

  /** The edit form's Save: true, or the server's message (shown inside the form). */
  async function save(id, changes) {
    try {
      const booking = await apply(id, changes);
      toast(`Booking #${booking.id} changed.`, 'success');
      return true;
    } catch (err) {
      return err.message || 'The change failed.';
    }
  }

  /** What booking a weekly series would do (`payload` has `repeat` and `dry_run`). */
  function dryRun(payload) {
    return createBooking(payload);
  }

  return { movable, move, save, dryRun };
}
