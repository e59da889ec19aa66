"""``procplan.present.safe``: one server value made safe for a terminal."""

from __future__ import annotations

import io
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from rich.text import Text

from procplan.core.text import BIDI_CONTROLS
from procplan.present import (
    CELL_LIMIT,
    capped,
    cell,
    clean_payload,
    clean_rich,
    joined,
    terminal_text,
)

ALLOWED_NONPRINTABLE = {"Zs", "Cf", "Co", "Cn"}
"""Kept as sent: spaces, format characters other than bidi (zero-width joiners of emoji),
private-use and code points this Python does not know yet (newer emoji)."""


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07"),  # OSC: retitle the terminal
        ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # clear the screen
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),  # even colours: server text is text
        ("a\nb\tc\rd", "a\\nb\\tc\\rd"),  # one value, one line
        ("bell\x07 bs\x08 del\x7f", "bell\\x07 bs\\x08 del\\x7f"),
        ("\x9b6n csi \x9d0;t\x9c", "\\x9b6n csi \\x9d0;t\\x9c"),  # 8-bit C1 controls
        ("\x00nul", "\\x00nul"),
        ("invoice\u202egnp.exe", "invoice\\u202egnp.exe"),  # right-to-left override
        ("\u2066iso\u2069 \u200emark\u200f \u061c", "\\u2066iso\\u2069 \\u200emark\\u200f \\u061c"),
        ("line\u2028sep\u2029", "line\\u2028sep\\u2029"),
        ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
        ("[bold red]x[/] [link=file:///etc/passwd]y[/link]", None),  # markup is Text's job
        ("café Ünïcödé 中文 日本語 한국어", None),
        ("👩‍💻 🇫🇷 👍🏽 ok", None),  # ZWJ sequence, flag, skin tone: intact
        ("C:\\x1b\\path", None),  # backslashes are not doubled
        ("", None),
    ],
)
def test_terminal_text_escapes_controls_and_keeps_text(value: str, shown: str | None) -> None:
    assert terminal_text(value) == (value if shown is None else shown)


def test_non_strings() -> None:
    assert terminal_text(None) == ""
    assert terminal_text(42) == "42"
    assert terminal_text(ValueError("bad\x1b[2J")) == "bad\\x1b[2J"


def test_limit_shortens_with_an_ellipsis_after_escaping() -> None:
    assert terminal_text("a" * 30_000, 64) == "a" * 63 + "…"
    assert terminal_text("a" * 64, 64) == "a" * 64
    assert terminal_text("\x1b" * 10, 8) == "\\x1b\\x1…"
    assert capped("b" * 100) == "b" * (CELL_LIMIT - 1) + "…"
    assert capped("b" * 100, None) == "b" * 100


def test_joined_caps_each_item() -> None:
    assert joined(["g0", "g1\x1b", "x" * 70]) == "g0, g1\\x1b, " + "x" * 63 + "…"
    assert joined([], ",") == ""


def test_cell_is_text_never_markup() -> None:
    value = cell("[bold red]x[/] \x1b[2J", style="green")
    assert isinstance(value, Text)
    assert value.plain == "[bold red]x[/] \\x1b[2J"
    out = io.StringIO()
    table = Table()
    table.add_column("c")
    table.add_row(value)
    Console(file=out, force_terminal=True, color_system="truecolor", width=80).print(table)
    rendered = out.getvalue()
    assert "[bold red]x[/]" in rendered
    assert "\x1b[2J" not in rendered and "\x1b[1;31m" not in rendered  # no clear, no bold red
    assert cell(None).plain == "" and cell("x" * 99).plain == "x" * 63 + "…"


def test_clean_rich_keeps_safe_styled_text_and_rebuilds_unsafe_text() -> None:
    safe = Text("ok")
    safe.stylize("red", 0, 1)
    assert clean_rich(safe) is safe
    long = Text("y" * 100)
    long.stylize("bold", 0, 10)
    short = clean_rich(long)
    assert short.plain == "y" * 63 + "…" and short.spans == long.spans
    hostile = Text("a\x1b]0;t\x1b\\b", style="dim")
    cleaned = clean_rich(hostile)
    assert cleaned.plain == "a\\x1b]0;t\\x1b\\b"
    assert [span.style for span in cleaned.spans] == ["dim"]


def test_clean_payload_walks_every_string_keys_included() -> None:
    payload = {"jobs": [{"name": "\x1b[2J", "gpus": [1, 2], "ok": True, "\x07k": None}]}
    assert clean_payload(payload) == {
        "jobs": [{"name": "\\x1b[2J", "gpus": [1, 2], "ok": True, "\\x07k": None}]
    }
    assert clean_payload(("a\n", 1.5)) == ["a\\n", 1.5]


def _unsafe(char: str) -> bool:
    category = unicodedata.category(char)
    return category in ("Cc", "Cs", "Zl", "Zp") or char in BIDI_CONTROLS


@given(st.text(), st.one_of(st.none(), st.integers(min_value=1, max_value=200)))
def test_output_never_holds_a_control_character(value: str, limit: int | None) -> None:
    shown = terminal_text(value, limit)
    assert not any(_unsafe(char) for char in shown)
    assert limit is None or len(shown) <= limit
    assert terminal_text(shown, limit) == shown  # idempotent: safe to apply at every layer


@given(st.text().filter(str.isprintable))
def test_identity_on_printable_text(value: str) -> None:
    assert terminal_text(value) == value


@given(
    st.text(
        st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters=BIDI_CONTROLS)
    )
)
def test_identity_on_text_without_controls(value: str) -> None:
    """Also for joiners, variation selectors, non-breaking spaces, private use, unassigned."""
    assert terminal_text(value) == value
