"""A job's output made safe for a terminal, colours kept (``procplan logs``).

Policy, like ``less -R``: a job's output is shown as the job wrote it, with its colours, but
it cannot take over the terminal of whoever reads it.

- Kept: text, tab, newline, carriage return (progress bars), and SGR sequences
  ``ESC [ <digits ; :> m`` (colours, bold, underline: the only escapes that change nothing but
  how the following characters look). An 8-bit CSI (U+009B) that forms SGR is kept in its
  7-bit spelling.
- Dropped, whole: every other escape sequence — other CSI sequences (cursor movement, screen
  and line clears, scrolling regions, mode changes, device queries whose answers a terminal
  would type into the reader's shell), OSC (window titles, hyperlinks, clipboard writes),
  DCS, SOS, PM, APC and the short ``ESC x`` / ``ESC ( B`` forms — and every other C0 or C1
  control (BEL, backspace, NUL, ...), bidi controls (as ``core.text.BIDI_CONTROLS``), and raw
  bytes 0x80–0x9F that are not part of a UTF-8 character (8-bit terminals read them as C1).
  An unterminated string sequence (an OSC without BEL/ST) ends at the next line break, so it
  cannot swallow the rest of the log.

Bytes are decoded as UTF-8 with ``surrogateescape``: text in another encoding (Latin-1 logs)
comes back byte for byte apart from the dropped C1 bytes. Pages arrive 64 KiB at a time, so
``LogFilter`` keeps its state between them: a sequence or character cut by a page boundary is
handled as if it had arrived whole.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from enum import Enum

from procplan.core.text import BIDI_CONTROLS

ESC = "\x1b"
BEL = "\x07"
CAN_SUB = frozenset("\x18\x1a")
"""Controls that abort any escape sequence in progress (ECMA-48)."""

MAX_SGR_PARAMS = 128
"""Longest SGR parameter string kept; a longer CSI sequence is dropped."""

_SGR_PARAMS = re.compile(r"[0-9;:]*")
_STRING_STARTS = frozenset("]PX^_")  # OSC, DCS, SOS, PM, APC
_BIDI = "".join(sorted(BIDI_CONTROLS))
_SPECIAL = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}\udc80-\udc9f]")
"""What text mode must look at: every control but tab/LF/CR, bidi controls, raw C1 bytes."""


class _State(Enum):
    TEXT = "text"
    ESCAPE = "escape"  # after ESC
    CSI = "csi"  # after ESC [ : reading parameters
    STRING = "string"  # inside OSC/DCS/SOS/PM/APC: discarded up to BEL or ST
    STRING_ESCAPE = "string-escape"  # ESC inside a string: ST if a backslash follows
    SHORT = "short"  # ESC + intermediates (``ESC ( B``): discarded up to the final byte


def _is_intermediate(char: str) -> bool:
    return "\x20" <= char <= "\x2f"


def _is_final(char: str) -> bool:
    return "\x30" <= char <= "\x7e"


class LogFilter:
    """Feed it a log's bytes in order (``feed``), then call ``finish``; each call returns the
    bytes to write. One filter per stream: it carries the escape-sequence state and any
    partial UTF-8 character across pages."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
        self._state = _State.TEXT
        self._params = ""
        self._steps: dict[_State, Callable[[str, list[str]], bool]] = {
            _State.TEXT: self._text,
            _State.ESCAPE: self._escape,
            _State.CSI: self._csi,
            _State.STRING: self._string,
            _State.STRING_ESCAPE: self._string_escape,
            _State.SHORT: self._short,
        }

    def feed(self, data: bytes) -> bytes:
        """The safe bytes of the next page."""
        return self._encode(self._filter(self._decoder.decode(data)))

    def finish(self) -> bytes:
        """The end of the stream: a trailing partial character is flushed (as raw bytes), a
        sequence that never ended is dropped."""
        out = self._filter(self._decoder.decode(b"", final=True))
        self._state, self._params = _State.TEXT, ""
        return self._encode(out)

    @staticmethod
    def _encode(text: str) -> bytes:
        return text.encode("utf-8", errors="surrogateescape")

    def _filter(self, text: str) -> str:
        """Copy runs of ordinary text in bulk; step through specials one at a time."""
        out: list[str] = []
        index, size = 0, len(text)
        while index < size:
            if self._state is _State.TEXT:
                match = _SPECIAL.search(text, index)
                end = size if match is None else match.start()
                out.append(text[index:end])
                index = end
                if match is None:
                    break
            char = text[index]
            if self._steps[self._state](char, out):
                index += 1  # consumed; otherwise the new state looks at it again
        return "".join(out)

    # Each step handles one character in one state and says whether it consumed it. A step
    # that does not consume it has moved to TEXT or ESCAPE, so the loop always advances.

    def _text(self, char: str, out: list[str]) -> bool:
        code = ord(char)
        if char == ESC:
            self._state = _State.ESCAPE
        elif 0x80 <= code <= 0x9F:  # an 8-bit C1 control is ESC + (code - 0x40)
            self._state = _State.ESCAPE
            return self._escape(chr(code - 0x40), out)
        elif _SPECIAL.match(char) is None:
            out.append(char)
        return True  # other controls, bidi controls and raw C1 bytes are dropped

    def _escape(self, char: str, out: list[str]) -> bool:
        if char == "[":
            self._state, self._params = _State.CSI, ""
        elif char in _STRING_STARTS:
            self._state = _State.STRING
        elif _is_intermediate(char):
            self._state = _State.SHORT
        elif _is_final(char):
            self._state = _State.TEXT  # a two-character escape (ESC c, ESC 7, ESC M ...)
        elif char == ESC:
            pass  # a new escape replaces the unfinished one
        else:
            self._state = _State.TEXT
            return False
        return True

    def _csi(self, char: str, out: list[str]) -> bool:
        if "\x20" <= char <= "\x3f":  # parameter and intermediate bytes
            self._params += char
            return True
        self._state = _State.TEXT
        if "\x40" <= char <= "\x7e":
            if char == "m" and self._is_sgr(self._params):
                out.append(f"{ESC}[{self._params}m")
            return True
        if char == ESC:
            self._state = _State.ESCAPE
            return True
        return char in CAN_SUB  # any other character aborts the sequence and is text again

    @staticmethod
    def _is_sgr(params: str) -> bool:
        return len(params) <= MAX_SGR_PARAMS and _SGR_PARAMS.fullmatch(params) is not None

    def _string(self, char: str, out: list[str]) -> bool:
        if char == ESC:
            self._state = _State.STRING_ESCAPE
        elif char in (BEL, "\x9c") or char in CAN_SUB:
            self._state = _State.TEXT
        elif ord(char) < 0x20:  # a line break (or other control) ends an unterminated string
            self._state = _State.TEXT
            return False
        return True

    def _string_escape(self, char: str, out: list[str]) -> bool:
        if char == "\\":
            self._state = _State.TEXT
            return True
        self._state = _State.ESCAPE  # ESC + anything else ends the string and starts anew
        return False

    def _short(self, char: str, out: list[str]) -> bool:
        if _is_intermediate(char):
            return True
        self._state = _State.TEXT
        return _is_final(char)


def filter_log(data: bytes) -> bytes:
    """A whole log at once (see ``LogFilter``)."""
    log = LogFilter()
    return log.feed(data) + log.finish()
