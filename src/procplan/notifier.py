"""Tell the server a booking finished early: ``signal_completion`` and ``procplan-notify``.

This runs at the tail of training scripts, so it must never take the script down: every HTTP
or network failure becomes a ``NotifyResult`` with ``ok=False`` (``status=0`` when no answer
came). Output and flags match ProcPlan's notifier exactly (``COMPAT.md``) because existing job
scripts parse them. The raw response body is reported on failure rather than a parsed message,
as ProcPlan did, so the request goes through the client's ``Transport.send`` (the response as
it is) rather than a ``ProcPlanClient`` part; the transport proves who sends it like every
client (``$PROCPLAN_TOKEN``, else ``procplan login``'s credential, else the server's host knows
the Unix user) and reaches ``unix:///path.sock`` servers too.
"""

from __future__ import annotations

import argparse
import sys
from typing import NamedTuple

import orjson

from procplan.client.errors import InvalidResponse, ServerUnreachable
from procplan.client.transport import Transport


class NotifyResult(NamedTuple):
    """Outcome of one notification; ``message`` is the body text (or the network error)."""

    ok: bool
    status: int
    message: str


def signal_completion(base_url: str, booking_id: int, timeout: float = 5.0) -> NotifyResult:
    """POST ``/api/mark_done`` for ``booking_id``; never raises for HTTP or network errors."""
    payload = orjson.dumps({"booking_id": int(booking_id)})
    headers = {"Content-Type": "application/json"}
    transport = Transport(base_url, timeout)
    try:
        response = transport.send("POST", "/api/mark_done", content=payload, headers=headers)
    except (ServerUnreachable, InvalidResponse) as exc:  # no answer, or an unreadable one
        return NotifyResult(ok=False, status=0, message=exc.reason)
    finally:
        transport.close()
    if response.is_success:
        return NotifyResult(ok=True, status=response.status_code, message="completed")
    return NotifyResult(ok=False, status=response.status_code, message=response.text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="procplan-notify", description="Notify ProcPlan that a booking finished early."
    )
    parser.add_argument("--url", required=True, help="Base URL of the ProcPlan server")
    parser.add_argument(
        "--booking-id", required=True, type=int, help="Booking identifier to mark as complete"
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="Request timeout in seconds (default: 5)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """``procplan-notify``: exit 0 when the server accepted, 1 otherwise."""
    args = _parser().parse_args(argv)
    result = signal_completion(args.url, args.booking_id, timeout=args.timeout)
    if result.ok:
        print(f"Booking {args.booking_id} marked complete (status {result.status}).")
        return 0
    print(
        f"Failed to mark booking complete (status {result.status}): {result.message}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
