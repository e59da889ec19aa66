"""Domain errors carry the human message, a machine code and the HTTP status they map to.

The API layer turns them into ``{"error", "status", "code"}`` bodies; the core never knows
about HTTP beyond this number, which keeps one source of truth for every message.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``message`` is shown to people verbatim, ``code`` is for programs."""

    status = 400
    default_code = "invalid_request"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class InvalidRequest(DomainError):
    """The request itself is wrong: fix the input and retry."""

    status = 400
    default_code = "invalid_request"


class NotFound(DomainError):
    """The named object does not exist (or is not in a state the operation applies to)."""

    status = 404
    default_code = "not_found"


class Conflict(DomainError):
    """The request is well formed but collides with the ledger (or with a state)."""

    status = 409
    default_code = "conflict"


class TopologyError(InvalidRequest):
    """A node/GPU topology (ProcPlan JSON config) is invalid."""

    default_code = "invalid_topology"


class Forbidden(DomainError):
    """Well formed and possible, but not allowed (a quota, another user's object)."""

    status = 403
    default_code = "forbidden"


class Unauthorized(DomainError):
    """Missing or wrong credentials (an agent without the cluster token)."""

    status = 401
    default_code = "unauthorized"


class TooManyRequests(DomainError):
    """Slow down: too many failed attempts (sign-in) in a short time."""

    status = 429
    default_code = "too_many_attempts"


class AnswerTooLarge(InvalidRequest):
    """The answer would exceed the size the server is configured to send: narrow the ask."""

    default_code = "answer_too_large"


def check_answer_size(estimate: int, limit: int, narrower: str) -> None:
    """Refuse an answer estimated above ``limit`` bytes, saying how to ask for less."""
    if estimate > limit:
        raise AnswerTooLarge(
            f"the answer would take about {_mb(estimate)}, over this server's limit of "
            f"{_mb(limit)}: {narrower}"
        )


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"
