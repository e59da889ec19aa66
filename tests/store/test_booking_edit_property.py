"""Editing bookings keeps rule 1 (ADR 0024): random sequences of create, edit and cancel on a
real SQLite store never leave two active booking claims overlapping on a GPU, and the store
accepts an edit exactly when a plain model (this test's own list of active bookings) says the
edited booking overlaps no other. The in-memory mirror and the rows agree after each step."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procplan.core.booking_edit import BookingEdit
from procplan.core.bookings import BookingLimits
from procplan.core.errors import Conflict, InvalidRequest
from procplan.core.invariants import find_overlaps
from procplan.core.model import BookingRequest, Gpu, Node, Topology
from procplan.service.bookings import BookingService
from procplan.store.engine import Store, make_engine
from procplan.store.migrate import upgrade
from procplan.testing import FakeClock

NOW = 1_795_428_000  # Monday 2026-11-23 10:00 UTC
HOUR = 3600
GPUS = ("n0-g0", "n0-g1", "n0-g2")
TOPOLOGY = Topology((Node("n0", "n0", tuple(Gpu(g, index=i) for i, g in enumerate(GPUS))),))
Window = tuple[tuple[str, ...], int, int]


@dataclass(frozen=True)
class Make:
    gpus: tuple[int, ...]
    start_h: int
    hours: int


@dataclass(frozen=True)
class Edit:
    which: int  # index into the bookings made so far
    gpus: tuple[int, ...] | None
    start_h: int | None
    end_h: int | None


@dataclass(frozen=True)
class Cancel:
    which: int


_gpus = st.lists(st.integers(0, len(GPUS) - 1), min_size=1, max_size=2, unique=True).map(tuple)
_hour = st.integers(1, 8)
_ops = st.lists(
    st.one_of(
        st.builds(Make, _gpus, _hour, st.integers(1, 3)),
        st.builds(Edit, st.integers(0, 5), st.none() | _gpus, st.none() | _hour, st.none() | _hour),
        st.builds(Cancel, st.integers(0, 5)),
    ),
    min_size=1,
    max_size=14,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database file, copied for each example (a migration per example is slow)."""
    path = tmp_path_factory.mktemp("edits") / "template.db"
    store = Store(make_engine(f"sqlite:///{path}"))
    upgrade(store)
    store.dispose()
    return path


@pytest.fixture
def opened() -> Iterator[list[Store]]:
    stores: list[Store] = []
    yield stores
    for store in stores:
        store.dispose()


def _overlaps_other(model: dict[int, Window], own: int | None, want: Window) -> bool:
    gpus, start, end = want
    return any(
        set(gpus) & set(g) and s < end and e > start
        for other, (g, s, e) in model.items()
        if other != own
    )


def _edit(service: BookingService, model: dict[int, Window], booking_id: int, op: Edit) -> None:
    gpus, start, end = model[booking_id]
    new_gpus = gpus if op.gpus is None else tuple(GPUS[i] for i in op.gpus)
    if sorted(new_gpus) == sorted(gpus):
        new_gpus = gpus
    new_start = start if op.start_h is None else NOW + op.start_h * HOUR
    new_end = end if op.end_h is None else NOW + op.end_h * HOUR
    change = BookingEdit(
        start=None if op.start_h is None else new_start,
        end=None if op.end_h is None else new_end,
        gpu_ids=None if op.gpus is None else tuple(GPUS[i] for i in op.gpus),
    )
    want = (new_gpus, new_start, new_end)
    try:
        edited = service.edit(booking_id, change).booking
    except InvalidRequest:
        assert new_end <= new_start
        return
    except Conflict:
        assert new_end > new_start and _overlaps_other(model, booking_id, want)
        return
    assert new_end > new_start and not _overlaps_other(model, booking_id, want)
    assert (edited.gpu_ids, edited.start, edited.end) == want
    model[booking_id] = want


def _step(service: BookingService, model: dict[int, Window], made: list[int], op: object) -> None:
    if isinstance(op, Make):
        want = (
            tuple(GPUS[i] for i in op.gpus),
            NOW + op.start_h * HOUR,
            NOW + (op.start_h + op.hours) * HOUR,
        )
        req = BookingRequest("n0", want[1], want[2], "ada", "A", gpu_ids=want[0])
        try:
            booking = service.create(req, whole_hours=False)
        except Conflict:
            assert _overlaps_other(model, None, want)
            return
        assert not _overlaps_other(model, None, want)
        model[booking.id] = want
        made.append(booking.id)
    elif isinstance(op, Edit | Cancel) and made:
        booking_id = made[op.which % len(made)]
        if booking_id not in model:
            return
        if isinstance(op, Cancel):
            service.cancel(booking_id)
            del model[booking_id]
        else:
            _edit(service, model, booking_id, op)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=_ops)
def test_edits_never_overlap_active_claims(
    ops: list[object], template: Path, tmp_path: Path, opened: list[Store]
) -> None:
    path = tmp_path / f"e{len(opened)}.db"
    shutil.copyfile(template, path)
    store = Store(make_engine(f"sqlite:///{path}"))
    opened.append(store)
    service = BookingService(store, FakeClock(NOW), BookingLimits())
    service.replace_topology(TOPOLOGY)
    model: dict[int, Window] = {}
    made: list[int] = []
    for op in ops:
        _step(service, model, made, op)
        claims = service.bookings.all_active_claims()
        assert find_overlaps(claims) == []
        held = {(c.booking_id, c.gpu_id, c.start, c.end) for c in claims}
        assert held == {(b, g, s, e) for b, (gs, s, e) in model.items() for g in gs}
        mirrored = [b for b in service.bookings.window(["n0"], NOW, NOW + 12 * HOUR) if b.is_active]
        assert {b.id: (b.gpu_ids, b.start, b.end) for b in mirrored} == model
