"""One server value made safe for a terminal: the single rule the CLI and the TUI print by.

A hostile lab member can store a label such as ``"\\x1b]0;pwned\\x07"`` (retitles the
victim's terminal), ``"\\x1b[2J"`` (clears it), a right-to-left override that makes
``"txt.exe"`` read ``"exe.txt"``, or ``"[link=file:///etc]x[/]"`` (Rich markup). A terminal
must see none of that as anything but text, so ``terminal_text`` writes every such character
as a visible escape, Python style:

- C0 controls, DEL and C1 controls (U+0000–U+001F, U+007F–U+009F) become ``\\xNN``
  (``"\\x1b[31m"`` shows as the eight characters ``\\x1b[31m``), except tab, newline and
  carriage return, which become ``\\t``, ``\\n`` and ``\\r``: a value is one line, and a
  newline inside a label must not forge the next table row or log line;
- bidi embeddings, overrides, isolates and marks (U+061C, U+200E, U+200F, U+202A–U+202E,
  U+2066–U+2069), line and paragraph separators (U+2028, U+2029) and lone surrogates (which
  would also crash an UTF-8 stdout) become ``\\uNNNN``.

Everything else is kept as sent: accents, CJK, emoji (zero-width joiners included), other
printable text. Backslashes are not doubled, so the function is the identity on printable
text and applying it twice changes nothing; the price is that a literal ``\\x1b`` typed by a
user looks the same as an escaped ESC, which is harmless.

Rich markup is a second, separate hazard: text given to Rich as a ``str`` is parsed as markup.
``cell`` therefore returns a ``rich.text.Text`` (never parsed); rendering code builds table
cells and styled fragments with it instead of markup f-strings.

Length: one value in a table cell or a one-line summary is capped at ``CELL_LIMIT``
characters with an ellipsis, so a 30,000-character user name cannot flood a screen; detail
views of a single object (``procplan job 17``) show the whole value, sanitised.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from rich.style import Style
from rich.text import Text

from procplan.core.text import BIDI_CONTROLS, LINE_SEPARATORS

CELL_LIMIT = 64
"""Characters of one server value in a table cell or a summary line (names, labels, ids)."""

MESSAGE_LIMIT = 500
"""Characters of a server message shown as one line on stderr."""

ELLIPSIS = "…"

Record = TypeVar("Record")

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _visible(code: int) -> str:
    """The printable spelling of one unsafe code point."""
    named = _NAMED.get(chr(code))
    if named is not None:
        return named
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _unsafe_code_points() -> list[int]:
    controls = [*range(0x00, 0x20), *range(0x7F, 0xA0)]
    separators = [ord(char) for char in LINE_SEPARATORS]
    surrogates = list(range(0xD800, 0xE000))
    return controls + separators + [ord(char) for char in BIDI_CONTROLS] + surrogates


_ESCAPES = {code: _visible(code) for code in _unsafe_code_points()}
"""``str.translate`` table: every unsafe code point to its visible escape."""


def terminal_text(value: object, limit: int | None = None) -> str:
    """``value`` as text that is safe to write to a terminal (see the module docstring).

    ``None`` is the empty string; other non-strings go through ``str``. With ``limit`` the
    result has at most ``limit`` characters, the last being ``…`` when it was shortened
    (counted after escaping, so the cap holds for what is printed).
    """
    text = "" if value is None else value if isinstance(value, str) else str(value)
    if not text.isprintable():  # fast path: printable text has nothing to escape
        text = text.translate(_ESCAPES)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + ELLIPSIS
    return text


def capped(value: object, limit: int | None = CELL_LIMIT) -> str:
    """``terminal_text`` with the table-cell cap: for one value inside a line or cell."""
    return terminal_text(value, limit)


def joined(items: Iterable[object], separator: str = ", ", limit: int = CELL_LIMIT) -> str:
    """A list of server values on one line, each capped on its own: a booking of eight GPUs
    keeps every id, and one absurd id cannot push the others out."""
    return separator.join(capped(item, limit) for item in items)


def cell(value: object, limit: int | None = CELL_LIMIT, style: str | Style = "") -> Text:
    """A table cell or styled fragment: sanitised, capped, and a ``Text`` so that Rich never
    reads server text as markup. The style is a span (Rich's ``==`` compares spans)."""
    text = Text(terminal_text(value, limit))
    if style and text.plain:
        text.stylize(style)
    return text


def clean_rich(text: Text, limit: int | None = CELL_LIMIT) -> Text:
    """A ``Text`` built elsewhere, made safe: unchanged when it already is, shortened with its
    styles when only too long, rebuilt plain (its base style kept) when it holds unsafe
    characters, since escaping shifts the positions its spans refer to."""
    plain = text.plain
    if terminal_text(plain) != plain:
        return cell(plain, limit, text.style)
    if limit is None or len(plain) <= limit:
        return text
    shortened = text[: max(limit - 1, 0)]
    shortened.append(ELLIPSIS)
    return shortened


def clean_payload(value: Any) -> Any:
    """Decoded JSON with every string (keys included) passed through ``terminal_text``.

    For answers that are only shown: applied where the data enters the front end, it makes
    every line built from it safe without each renderer remembering to. Lengths are not
    capped here; renderers cap per cell.
    """
    if isinstance(value, str):
        return terminal_text(value)
    if isinstance(value, Mapping):
        return {clean_payload(key): clean_payload(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean_payload(item) for item in value]
    return value


def clean_record(record: Record) -> Record:
    """A frozen dataclass answer (``client.Job``) with every text field, and every text in a
    tuple field, passed through ``terminal_text``; other fields (numbers, instants) and the
    record's ``raw`` payload are kept. ``clean_payload`` for typed answers."""
    if not dataclasses.is_dataclass(record) or isinstance(record, type):
        raise TypeError(f"not a dataclass instance: {type(record).__name__}")
    changes: dict[str, Any] = {}
    for item in dataclasses.fields(record):
        value = getattr(record, item.name)
        if isinstance(value, str):
            changes[item.name] = terminal_text(value)
        elif isinstance(value, tuple):
            changes[item.name] = tuple(
                terminal_text(part) if isinstance(part, str) else part for part in value
            )
    return dataclasses.replace(record, **changes)
