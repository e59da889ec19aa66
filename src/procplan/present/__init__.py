"""Terminal rendering shared by the CLI and the TUI.

Everything a ProcPlan server returns may have been typed by another lab member: labels, user
names, job names, commands, node names, error messages, job output. ``safe`` turns such values
into text that cannot drive the terminal (no escape sequences, no control characters, no bidi
reordering, no Rich markup) and shortens long values for tables; ``logs`` filters a job's raw
output, keeping its colours. The package imports neither the HTTP client nor the CLI, so both
front ends (and their tests) use the same rules.
"""

from procplan.present.logs import LogFilter, filter_log
from procplan.present.safe import (
    CELL_LIMIT,
    MESSAGE_LIMIT,
    capped,
    cell,
    clean_payload,
    clean_record,
    clean_rich,
    joined,
    terminal_text,
)

__all__ = [
    "CELL_LIMIT",
    "MESSAGE_LIMIT",
    "LogFilter",
    "capped",
    "cell",
    "clean_payload",
    "clean_record",
    "clean_rich",
    "filter_log",
    "joined",
    "terminal_text",
]
