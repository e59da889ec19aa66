"""RFC 5545 text of bookings (``wire.ical``, issue #17): CRLF, folding at 75 octets,
TEXT escaping, UTC times, one stable UID per booking."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from procplan.core.model import Booking, BookingStatus
from procplan.wire.ical import booking_event, calendar_text, escape_text, fold, ical_time

T0 = 1_795_428_000  # 2026-11-23T10:00:00Z


def unfold(text: str) -> list[str]:
    assert text.endswith("\r\n")
    return text[:-2].replace("\r\n ", "").split("\r\n")


def test_escaping_of_text_values() -> None:
    assert escape_text("a,b;c\\d\ne\r\nf") == "a\\,b\\;c\\\\d\\ne\\nf"
    assert escape_text("bell\x07 tab\t") == "bell tab\t"


def test_times_are_utc_with_z() -> None:
    assert ical_time(T0) == "20261123T100000Z"


def test_short_lines_are_not_folded() -> None:
    assert fold("SUMMARY:x") == "SUMMARY:x\r\n"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_folding_keeps_lines_within_75_octets_and_unfolds_back(value: str) -> None:
    line = "DESCRIPTION:" + escape_text(value)
    folded = fold(line)
    physical = folded[:-2].split("\r\n")
    assert all(len(p.encode("utf-8")) <= 75 for p in physical)
    assert all(p.startswith(" ") for p in physical[1:])
    assert unfold(folded) == [line]


def test_a_calendar_of_bookings() -> None:
    b = Booking(7, "node-a", ("g0", "g1"), T0, T0 + 7200, "alice", "AB, team; x\\y")
    gone = Booking(8, "node-a", ("g0",), T0, T0 + 3600, "bob", "B", status=BookingStatus.CANCELLED)
    text = calendar_text("ProcPlan: alice", [b, gone], "gpus.example.org", T0 - 60)
    assert "\n" not in text.replace("\r\n", "")
    lines = unfold(text)
    assert lines[:2] == ["BEGIN:VCALENDAR", "VERSION:2.0"] and lines[-1] == "END:VCALENDAR"
    assert "UID:booking-7@gpus.example.org" in lines
    assert "DTSTART:20261123T100000Z" in lines and "DTEND:20261123T120000Z" in lines
    assert "DTSTAMP:20261123T095900Z" in lines
    assert "SUMMARY:AB\\, team\\; x\\\\y - 2 GPUs on node-a" in lines
    assert lines.count("STATUS:CANCELLED") == 1 and lines.count("BEGIN:VEVENT") == 2
    # The UID is the booking's, whatever else changes (a release, a new stamp).
    later = booking_event(
        b._replace(end=T0 + 60, status=BookingStatus.COMPLETED), "gpus.example.org", T0
    )
    assert later[1] == "UID:booking-7@gpus.example.org"
