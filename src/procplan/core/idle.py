"""Idle reclaim of booked GPUs (issue #14, ADR 0013) — pure rules.

A booking whose GPUs sit unused blocks everyone else for nothing. The rules here decide, from
what the agents last reported about the booking's GPUs, the booking's previous idle state,
the settings and ``now``, what happens next: nothing, a warning to the owner, or the release
of the rest of the booking. They are graded (a GPU that holds memory at ~0 % utilization
waits its own, longer threshold: a notebook that keeps a model loaded is not abandoned as
fast as an empty GPU), explainable (every release carries its reason in words) and off by
default (the cluster setting, overridden per tenant). The state lives in the store, so a
server restart neither forgets a warning nor restarts the clock.

Idleness must be *observed*: a booking without a fresh reading of every GPU (node offline,
read error) starts over, so no booking is released on missing evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from procplan.core.model import Booking
from procplan.core.notes import Note, NoteKind, when_text
from procplan.core.timeutil import MINUTE, Instant

__all__ = [
    "Action",
    "Decision",
    "GpuSample",
    "IdleSettings",
    "IdleState",
    "Use",
    "booking_idle",
    "booking_released",
    "booking_use",
    "decide",
    "enabled_for",
    "gpu_use",
]


@dataclass(frozen=True, slots=True)
class IdleSettings:
    """The cluster's knobs (``config.Settings.idle_*``), in seconds and plain numbers."""

    enabled: bool = False
    after_s: int = 30 * MINUTE
    memory_after_s: int = 120 * MINUTE
    util_pct: float = 5.0
    memory_mb: int = 500
    grace_s: int = 15 * MINUTE


@dataclass(frozen=True, slots=True)
class IdleState:
    """What the store keeps per booking: idle since when (``None``: not idle), warned when,
    whether the owner answered "keep" (then never again), and why it was released."""

    since: Instant | None = None
    warned_at: Instant | None = None
    keep: bool = False
    released_reason: str | None = None


@dataclass(frozen=True, slots=True)
class GpuSample:
    """One booked GPU as last reported: its utilization and memory in use, and whether a
    process (or running job) of the booking's owner is on it."""

    utilization_pct: float | None
    memory_used_mb: int | None
    owner_process: bool = False


class Use(StrEnum):
    """How a GPU (or a whole booking) is used, as far as reclaim is concerned."""

    BUSY = "busy"  # the owner's process runs, or utilization is above the threshold
    IDLE = "idle"  # below both thresholds, no process of the owner
    HOLDING = "holding"  # ~0 % utilization but memory held: the longer threshold applies
    UNKNOWN = "unknown"  # no fresh reading: no evidence either way


class Action(StrEnum):
    NONE = "none"
    WARN = "warn"
    RELEASE = "release"


@dataclass(frozen=True, slots=True)
class Decision:
    """The booking's new state and what to do; ``reason`` explains a release."""

    state: IdleState
    action: Action = Action.NONE
    reason: str = ""


def enabled_for(cluster: bool, tenant: bool | None) -> bool:
    """The tenant's override when it set one, else the cluster's setting."""
    return cluster if tenant is None else tenant


def gpu_use(sample: GpuSample | None, settings: IdleSettings) -> Use:
    """One GPU: busy, idle, holding memory at ~0 % utilization, or unknown."""
    if sample is None or sample.utilization_pct is None:
        return Use.UNKNOWN
    if sample.owner_process or sample.utilization_pct > settings.util_pct:
        return Use.BUSY
    if sample.memory_used_mb is not None and sample.memory_used_mb > settings.memory_mb:
        return Use.HOLDING
    return Use.IDLE


def booking_use(samples: Sequence[GpuSample | None], settings: IdleSettings) -> Use:
    """A booking is idle only when every GPU is: one busy GPU keeps all of them (the work
    may be waiting for its other GPUs), one unknown GPU means no evidence."""
    uses = {gpu_use(sample, settings) for sample in samples}
    if not uses:
        return Use.UNKNOWN
    for use in (Use.BUSY, Use.UNKNOWN, Use.HOLDING):
        if use in uses:
            return use
    return Use.IDLE


def decide(
    state: IdleState, use: Use, settings: IdleSettings, enabled: bool, now: Instant
) -> Decision:
    """The next state and action for a booking in force at ``now``.

    Not idle (or unknown, or reclaim disabled): the clock and any warning start over.
    Idle for the threshold (``memory_after_s`` while memory is held): warn once. Still idle
    ``grace_s`` after the warning: release. A booking whose owner answered "keep" is never
    touched again.
    """
    if state.keep:
        return Decision(state)
    if not enabled or use in (Use.BUSY, Use.UNKNOWN):
        return Decision(replace(state, since=None, warned_at=None))
    since = now if state.since is None else state.since
    threshold = settings.memory_after_s if use is Use.HOLDING else settings.after_s
    if state.warned_at is not None:
        if now >= state.warned_at + settings.grace_s:
            reason = release_reason(use, settings, now - since)
            released = replace(state, since=since, released_reason=reason)
            return Decision(released, Action.RELEASE, reason)
        return Decision(replace(state, since=since))
    if now - since >= threshold:
        return Decision(replace(state, since=since, warned_at=now), Action.WARN)
    return Decision(replace(state, since=since))


def release_reason(use: Use, settings: IdleSettings, idle_s: int) -> str:
    """Why a booking was released, in words (kept on the booking and in the audit log)."""
    minutes = max(idle_s, 0) // MINUTE
    pct = f"{settings.util_pct:g}"
    if use is Use.HOLDING:
        return (
            f"idle: no process of its owner and <= {pct} % utilization (memory held) "
            f"for {minutes} min"
        )
    return f"idle: no process of its owner and <= {pct} % utilization for {minutes} min"


# ---- notes (the outbox's values, ``core.notes.Note``) ---------------------------------------


def booking_idle(booking: Booking, state: IdleState, release_at: Instant) -> Note:
    """The warning: your booked GPUs are idle and will be released unless you keep them."""
    since = state.since if state.since is not None else release_at
    gpus = ", ".join(booking.gpu_ids)
    return Note(
        f"booking:{booking.id}:idle:{since}", NoteKind.BOOKING_IDLE, booking.user,
        f"Booking {booking.id}: GPUs idle, released at {when_text(release_at)}",
        f"The GPUs of booking {booking.id} ({booking.label or 'no label'}) on "
        f"{booking.node_id} ({gpus}) have been idle since {when_text(since)}. The rest of the "
        f"booking will be released at {when_text(release_at)} so others can use them.\n"
        f"To keep it: procplan keep {booking.id}  (or start using the GPUs).",
    )  # fmt: skip


def booking_released(booking: Booking, reason: str, at: Instant) -> Note:
    """The release: the rest of your booking was freed, and why."""
    return Note(
        f"booking:{booking.id}:released:idle", NoteKind.BOOKING_RELEASED, booking.user,
        f"Booking {booking.id} was released (idle)",
        f"Booking {booking.id} on {booking.node_id} ({', '.join(booking.gpu_ids)}) was "
        f"released at {when_text(at)}: {reason}.",
    )  # fmt: skip
