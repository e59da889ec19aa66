"""Sending the log shipper's chunks to the server (the I/O half of ``logship``).

``LogShipper`` decides what is new in each job's output; ``LogSender`` sends it, one round
at a time under one lock (a round still going makes the next one a no-op), and feeds the
server's answers back: an offset mismatch resumes where the server is, a refusal that a
retry cannot fix stops that stream, anything worth a retry pauses until the next round.
"""

from __future__ import annotations

import logging
import threading

from procplan.agent.logship import Chunk, LogShipper
from procplan.agent.protocol import Key
from procplan.client import ApiError, ClientError
from procplan.client.agent import AgentClient, OffsetMismatch

log = logging.getLogger("procplan.agent")


class LogSender:
    """Ships a node's job logs through its agent client."""

    def __init__(self, client: AgentClient, node_id: str, shipper: LogShipper) -> None:
        self.client = client
        self.node_id = node_id
        self.shipper = shipper
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    def ship(self, session: str, keys: list[Key] | None, rounds: int) -> None:
        """Ship new log bytes (of ``keys``, default all) until none are left or ``rounds``
        chunks per stream went out; stops at the first failure that is worth a retry."""
        with self._lock:
            for _ in range(rounds):
                chunks = self.shipper.pending(keys)
                if not chunks:
                    return
                for chunk in chunks:
                    if not self._send(session, chunk):
                        return

    def _send(self, session: str, chunk: Chunk) -> bool:
        """Send one chunk; False when shipping should pause until the next round."""
        job_id, run = chunk.key
        try:
            answer = self.client.agent_ship_log(
                self.node_id, session, job_id, run, chunk.stream, chunk.offset,
                chunk.data, rank=chunk.rank,
            )  # fmt: skip
        except OffsetMismatch as exc:
            self.shipper.resume(chunk.key, chunk.stream, exc.size)
            return True
        except ApiError as exc:
            retry = exc.status in (401, 408, 429) or exc.status >= 500
            if retry or exc.code == "unknown_session":
                return False
            log.warning("job %s run %s: %s log refused, not shipping it further: %s",
                        job_id, run, chunk.stream, exc)  # fmt: skip
            self.shipper.acknowledge(chunk.key, chunk.stream, chunk.offset, done=True)
            return True
        except ClientError:
            return False
        self.shipper.acknowledge(chunk.key, chunk.stream, chunk.end,
                                 done=bool(answer.get("truncated")))  # fmt: skip
        return True
