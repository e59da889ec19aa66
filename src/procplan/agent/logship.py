"""Tailing job log files for shipping to the server (ADR 0006 "Logs").

``LogShipper`` remembers, per job run and stream, how many bytes the server has. ``pending``
reads what is new (bounded per stream, so one chatty job cannot hold up a tick); the shell
posts each chunk and calls ``acknowledge`` with the new offset, or ``resume`` with the
server's size when the server answers ``offset_mismatch`` (after an agent restart, or a
request that was applied but whose answer was lost). It does no HTTP itself and is safe to
use from the shell's worker threads.

Offsets are those of the run's stored log, which begins at ``start`` in the file: a requeued
run appends to the file its earlier runs wrote, and only its own part (separator line
included) is shipped as that run. Each chunk names the node's ``rank`` in the job: the
server keeps one log per rank.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from procplan.agent.protocol import Key

CHUNK_BYTES = 256 * 1024
Stream = str  # "stdout" | "stderr"


@dataclass(frozen=True, slots=True)
class Chunk:
    key: Key
    stream: Stream
    offset: int
    data: bytes
    rank: int = 0

    @property
    def end(self) -> int:
        return self.offset + len(self.data)


@dataclass
class _Tail:
    path: str
    start: int = 0  # where the run's output begins in the file
    rank: int = 0
    offset: int = 0  # bytes the server has (from ``start``)
    done: bool = False  # the server stopped taking more (truncated at its cap)


class LogShipper:
    """The shipped offsets of every tracked job's log files."""

    def __init__(self, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.chunk_bytes = chunk_bytes
        self._tails: dict[tuple[Key, Stream], _Tail] = {}
        self._lock = threading.Lock()

    def track(
        self,
        key: Key,
        stdout: str | None,
        stderr: str | None,
        rank: int = 0,
        starts: tuple[int, int] = (0, 0),
    ) -> None:
        """Follow a job's files from ``starts`` (stdout, stderr byte positions); a stderr
        that is the stdout file is shipped once, as stdout."""
        with self._lock:
            if stdout:
                self._tails.setdefault((key, "stdout"), _Tail(stdout, starts[0], rank))
            if stderr and not (stdout and _same_file(stdout, stderr)):
                self._tails.setdefault((key, "stderr"), _Tail(stderr, starts[1], rank))

    def tracked(self) -> list[Key]:
        with self._lock:
            return sorted({key for key, _stream in self._tails})

    def offset(self, key: Key, stream: Stream) -> int | None:
        with self._lock:
            tail = self._tails.get((key, stream))
            return None if tail is None else tail.offset

    def pending(self, keys: list[Key] | None = None, max_bytes: int | None = None) -> list[Chunk]:
        """New bytes, at most ``max_bytes`` (default ``chunk_bytes``) per stream, of the
        given jobs (default: all); files that are missing or shorter than the offset give
        nothing."""
        limit = max_bytes or self.chunk_bytes
        with self._lock:
            todo = [
                (key, stream, tail.path, tail.start, tail.offset, tail.rank)
                for (key, stream), tail in self._tails.items()
                if not tail.done and (keys is None or key in keys)
            ]
        chunks = []
        for key, stream, path, start, offset, rank in todo:
            data = _read(path, start + offset, limit)
            if data:
                chunks.append(Chunk(key, stream, offset, data, rank))
        return chunks

    def acknowledge(self, key: Key, stream: Stream, new_offset: int, done: bool = False) -> None:
        """The server now has ``new_offset`` bytes (``done``: it takes no more)."""
        with self._lock:
            tail = self._tails.get((key, stream))
            if tail is not None:
                tail.offset, tail.done = new_offset, tail.done or done

    def resume(self, key: Key, stream: Stream, server_size: int) -> None:
        """The server has ``server_size`` bytes (it answered ``offset_mismatch``)."""
        self.acknowledge(key, stream, max(server_size, 0))

    def forget(self, key: Key) -> None:
        with self._lock:
            for name in [name for name in self._tails if name[0] == key]:
                del self._tails[name]


def _same_file(a: str, b: str) -> bool:
    if os.path.normpath(a) == os.path.normpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _read(path: str, offset: int, limit: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(limit)
    except OSError:
        return b""
