"""Which characters a stored string may hold: one rule for every store and every entry point.

SQLite stores any string; PostgreSQL refuses NUL (``\\x00``) and strings that are not valid
UTF-8 (a lone surrogate such as ``\\ud800`` cannot be encoded). A value one store keeps and the
other refuses makes the two disagree, and a refusal deep in a transaction is a 500. So strings
are checked where they enter, the same way for both stores:

- **names** (users, node and GPU ids, tenants, labels, job names, e-mail): printable text only.
  No control characters (C0, DEL, C1), no line or paragraph separators, and no bidirectional
  overrides or isolates, which make one name look like another on a screen.
- **free text** (commands, scripts, paths, environment values, messages): anything a program
  may legitimately hold (tabs, newlines, escape sequences the user's own terminal will see
  escaped), except NUL and lone surrogates, which no store and no ``execve`` accepts.
"""

from __future__ import annotations

import unicodedata

# Explicit embeddings and overrides (U+202A..U+202E) and isolates (U+2066..U+2069), plus the
# implicit marks (U+200E, U+200F, U+061C): enough to reorder how a name is displayed.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
LINE_SEPARATORS = frozenset("\u2028\u2029")


SURROGATE = "contains a lone surrogate (not valid Unicode text)"


def _is_surrogate(ch: str) -> bool:
    return "\ud800" <= ch <= "\udfff"


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a name (``None`` when it can); the reason names the character."""
    if value.isprintable():  # the common case, in C: no Cc, Cf, Cs, Zl, Zp character at all
        return None
    for ch in value:
        if _is_surrogate(ch):
            return SURROGATE
        if ch in BIDI_CONTROLS:
            return f"contains a bidirectional control character (U+{ord(ch):04X})"
        if ch in LINE_SEPARATORS or unicodedata.category(ch) == "Cc":
            return f"contains a control character (U+{ord(ch):04X})"
    return None


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as free text (``None`` when it can)."""
    if "\x00" in value:
        return "contains a NUL character (U+0000)"
    try:
        value.encode("utf-8")  # in C; only a lone surrogate cannot be encoded
    except UnicodeEncodeError:
        return SURROGATE
    return None
