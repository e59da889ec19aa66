"""``procplan.present.logs``: a job's output for a terminal, colours kept, nothing else."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procplan.core.text import BIDI_CONTROLS
from procplan.present import LogFilter, filter_log

SGR = re.compile(rb"\x1b\[[0-9;:]*m")


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"\x1b[31mred\x1b[0m plain", None),  # SGR kept, like less -R
        (b"\x1b[1;38;5;196mx\x1b[38:2::255:0:0my\x1b[m", None),  # 256 colours, truecolor
        (b"a\tb\r\nprogress 50%\rprogress 100%\n", None),  # tab, CR, LF kept
        ("caf\u00e9 \u4e2d\u6587 \U0001f469\u200d\U0001f4bb\n".encode(), None),
        (b"\x1b]0;pwned\x07title", b"title"),  # OSC (BEL)
        (b"\x1b]2;pwned\x1b\\title", b"title"),  # OSC (ST)
        (b"\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\", b"link"),  # hyperlink: text kept
        (b"\x1b]52;c;cm0gLXJmIH4=\x07", b""),  # clipboard write
        (b"a\x1b[2Jb\x1b[Hc\x1b[10;5Hd\x1b[Ke\x1b[?1049hf\x1b[6ng", b"abcdefg"),
        (b"\x1b[31;2Jx", b"x"),  # not SGR although it starts like one
        (b"\x1bPq#0;2;0;0;0\x1b\\dcs", b"dcs"),  # DCS (sixel)
        (b"\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\k", b"k"),
        (b"\x1bcreset\x1b7\x1b8\x1bM\x1b(B\x1b)0ok", b"resetok"),  # short escapes
        (b"bell\x07 bs\x08 nul\x00 vt\x0b ff\x0c del\x7f so\x0e", b"bell bs nul vt ff del so"),
        ("\u009b31mc1\u009b2J\u009d0;t\u0007".encode(), b"\x1b[31mc1"),  # 8-bit C1, UTF-8
        (b"raw \x9b2J \x85 bytes", b"raw 2J  bytes"),  # raw C1 bytes dropped
        ("a\u202eb\u2066c\u2069".encode(), b"abc"),  # bidi controls
        (b"\x1b]0;never ends\nnext line\n", b"\nnext line\n"),  # ends at the line break
        (b"\x1b[31\nx", b"\nx"),  # a control aborts a CSI sequence
        (b"\x1b\x1b[32mg", b"\x1b[32mg"),
        (b"latin-1 \xe9t\xe9 \xff", None),  # not UTF-8: bytes come back as stored
    ],
)
def test_filter_log(raw: bytes, shown: bytes | None) -> None:
    assert filter_log(raw) == (raw if shown is None else shown)


SAMPLE = (
    "\x1b[1;31mERROR\x1b[0m caf\u00e9 \x1b]0;title\x07\x1b[2J\u009b33mC1\x1b[0m"
    "\U0001f680 \u202eflip\r\n\x1bPdcs\x1b\\tail\xff"
).encode("utf-8", errors="surrogateescape")


def test_pages_may_cut_sequences_and_characters_anywhere() -> None:
    whole = filter_log(SAMPLE)
    for cut in range(len(SAMPLE) + 1):
        log = LogFilter()
        assert log.feed(SAMPLE[:cut]) + log.feed(SAMPLE[cut:]) + log.finish() == whole, cut
    byte_by_byte = LogFilter()
    assert b"".join(byte_by_byte.feed(bytes([b])) for b in SAMPLE) + byte_by_byte.finish() == whole


def test_an_unfinished_sequence_at_the_end_is_dropped() -> None:
    log = LogFilter()
    assert log.feed(b"ok\x1b[3") == b"ok"
    assert log.finish() == b""
    assert log.feed(b"1mx") == b"1mx"  # finish resets the state


def _assert_terminal_safe(out: bytes) -> None:
    rest = SGR.sub(b"", out).decode("utf-8", errors="surrogateescape")
    for char in rest:
        code = ord(char)
        assert char in "\t\n\r" or not (code < 0x20 or 0x7F <= code <= 0x9F), repr(out)
        assert not 0xDC80 <= code <= 0xDC9F, repr(out)  # raw C1 byte
        assert char not in BIDI_CONTROLS


ESCAPY = st.text(st.sampled_from("\x1b\x07\x9b\x9c\x9d[]\\;:0123m2JHP_^Xc(\n\r\tab\u202e\x18"))


@given(st.binary(max_size=300))
def test_no_control_survives_but_sgr_from_bytes(raw: bytes) -> None:
    _assert_terminal_safe(filter_log(raw))


@given(ESCAPY)
def test_no_control_survives_but_sgr_from_escape_soup(text: str) -> None:
    _assert_terminal_safe(filter_log(text.encode()))


@given(st.text(st.characters(exclude_categories=("Cc", "Cs"), exclude_characters=BIDI_CONTROLS)))
def test_identity_on_text_without_controls(text: str) -> None:
    data = text.encode()
    assert filter_log(data) == data
