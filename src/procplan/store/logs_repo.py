"""Job logs shipped by agents (ADR 0006 §7): appended chunks and a head per stream.

The agent sends each new piece of a log file with the byte offset it starts at; the head keeps
the size stored so far, and an append is accepted only at exactly that offset. A lost answer
or a restarted agent then resends from the size the server names instead of duplicating or
skipping bytes. Each (job, run, stream) keeps at most ``cap_bytes``; the rest is dropped and
the log is marked truncated.

One log per rank: each node of a multi-node job ships its own output. Rank 0 (every
single-node job) is stored under the stream's name (``stdout``/``stderr``), rank N > 0 under
``out.N``/``err.N`` (``stream_key``): the ``stream`` column is 8 characters, so ranks go up to
``MAX_RANK``.

Runs of a requeued job are stored apart (the agent ships each run from where it begins in
the appended file, starting with its separator line); a read without a run reads them all,
run after run, as one log whose offsets run across them.
"""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, delete, func, select, update

from procplan.core.errors import Conflict, InvalidRequest, NotFound
from procplan.core.timeutil import Instant
from procplan.store.engine import Store
from procplan.store.tables import job_log_heads, job_logs, jobs, upsert_insert

__all__ = ["MAX_RANK", "STREAMS", "LogOffsetMismatch", "LogStore", "check_stream", "stream_key"]

STREAMS = ("stdout", "stderr")
MAX_RANK = 9999  # ``err.9999`` fills the 8-character stream column


class LogOffsetMismatch(Conflict):
    """An append that does not start where the stored log ends; ``size`` is where it does."""

    default_code = "offset_mismatch"

    def __init__(self, offset: int, size: int) -> None:
        super().__init__(
            f"log offset {offset} does not match the stored size {size}: resend from {size}"
        )
        self.size = size


_KEY = (
    (job_log_heads.c.job_id == bindparam("job_id"))
    & (job_log_heads.c.run == bindparam("run"))
    & (job_log_heads.c.stream == bindparam("stream"))
)
_HEAD = select(job_log_heads.c.size, job_log_heads.c.truncated).where(_KEY)
_CHUNK_KEY = (
    (job_logs.c.job_id == bindparam("job_id"))
    & (job_logs.c.run == bindparam("run"))
    & (job_logs.c.stream == bindparam("stream"))
)
# The chunk holding byte ``start`` begins at the largest chunk offset not after it.
_FIRST_CHUNK = (
    select(func.coalesce(func.max(job_logs.c.offset), 0))
    .where(_CHUNK_KEY, job_logs.c.offset <= bindparam("start"))
    .scalar_subquery()
)
_CHUNKS = (
    select(job_logs.c.offset, job_logs.c.data)
    .where(_CHUNK_KEY, job_logs.c.offset >= _FIRST_CHUNK, job_logs.c.offset < bindparam("end"))
    .order_by(job_logs.c.offset)
)


class LogStore:
    """Appends and reads of job logs; see the module docstring."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def append(
        self,
        job_id: int,
        run: int,
        stream: str,
        offset: int,
        data: bytes,
        cap_bytes: int,
        now: Instant,
        rank: int = 0,
    ) -> tuple[int, bool]:
        """Append ``data`` at ``offset``; return the stored size and whether it is truncated.

        ``LogOffsetMismatch`` (409, with ``size``) when ``offset`` is not the stored size.
        Once truncated, a log takes nothing more and answers its head whatever the offset, so
        an agent that keeps shipping is not sent into a resend loop.
        """
        key = {"job_id": job_id, "run": run, "stream": stream_key(stream, rank)}
        with self.store.write() as conn:
            _check_job(conn, job_id)
            if data and offset == 0:
                # The head row must exist before it is locked: concurrent first appends
                # (PostgreSQL) then queue on it instead of one failing on the primary key.
                conn.execute(
                    upsert_insert(self.store.dialect, job_log_heads)
                    .values(**key, size=0, truncated=False, updated_at=now)
                    .on_conflict_do_nothing()
                )
            head = conn.execute(_HEAD.with_for_update(), key).first()
            size, truncated = (0, False) if head is None else (int(head.size), bool(head.truncated))
            if not data or truncated:
                return size, truncated
            if offset != size:
                raise LogOffsetMismatch(offset, size)
            kept = data[: max(cap_bytes - size, 0)]
            truncated = len(kept) < len(data)
            if kept:
                conn.execute(job_logs.insert().values(**key, offset=size, data=kept))
            conn.execute(
                update(job_log_heads)
                .where(*(job_log_heads.c[name] == value for name, value in key.items()))
                .values(size=size + len(kept), truncated=truncated, updated_at=now)
            )
            return size + len(kept), truncated

    def read(
        self,
        job_id: int,
        stream: str,
        offset: int,
        limit: int,
        run: int | None = None,
        rank: int = 0,
    ) -> tuple[bytes, int, bool, int | None]:
        """Up to ``limit`` bytes from ``offset`` of the ``rank``'s ``stream``, the stored
        size, the truncation flag and the run read. ``run=None`` reads every run, in order,
        as one log (size: their sum; truncated: any of them; the run: the latest); a log
        never written reads as ``(b"", 0, False, None)``."""
        name = stream_key(stream, rank)
        if offset < 0 or limit < 0:
            raise InvalidRequest(f"offset and limit must not be negative (got {offset}, {limit})")
        with self.store.read() as conn:
            query = select(job_log_heads.c.run, job_log_heads.c.size, job_log_heads.c.truncated)
            query = query.where(job_log_heads.c.job_id == job_id, job_log_heads.c.stream == name)
            if run is not None:
                query = query.where(job_log_heads.c.run == run)
            heads = conn.execute(query.order_by(job_log_heads.c.run)).all()
            if not heads:
                return b"", 0, False, None
            parts, base, end = [], 0, offset + limit
            for head in heads:
                size = int(head.size)
                lo, hi = max(offset - base, 0), min(end - base, size)
                if lo < hi:
                    key = {"job_id": job_id, "run": int(head.run), "stream": name}
                    parts.append(_stitch(conn, key, lo, hi))
                base += size
            truncated = any(bool(head.truncated) for head in heads)
            return b"".join(parts), base, truncated, int(heads[-1].run)

    def delete_job(self, job_id: int) -> int:
        """Drop every log of a job; return how many chunks went."""
        with self.store.write() as conn:
            conn.execute(delete(job_log_heads).where(job_log_heads.c.job_id == job_id))
            return int(conn.execute(delete(job_logs).where(job_logs.c.job_id == job_id)).rowcount)


def tail_lines(conn: Connection, job_id: int, run: int, max_bytes: int = 4096) -> list[str]:
    """The last lines of a run's log (its stderr when it wrote any, else its stdout): what a
    failure notification quotes. Read in the caller's transaction."""
    for stream in ("stderr", "stdout"):
        key = {"job_id": job_id, "run": run, "stream": stream_key(stream)}
        size = conn.execute(
            select(job_log_heads.c.size).where(
                *(job_log_heads.c[name] == value for name, value in key.items())
            )
        ).scalar()
        if size:
            data = _stitch(conn, key, max(int(size) - max_bytes, 0), int(size))
            lines = data.decode(errors="replace").splitlines()
            return lines[1:] if int(size) > max_bytes and len(lines) > 1 else lines
    return []


def _stitch(conn: Connection, key: dict[str, object], start: int, end: int) -> bytes:
    """The bytes of ``[start, end)`` from the chunks that overlap it."""
    if end <= start:
        return b""
    parts = []
    for chunk_offset, chunk in conn.execute(_CHUNKS, {**key, "start": start, "end": end}):
        data = bytes(chunk)
        lo, hi = max(start - chunk_offset, 0), min(end - chunk_offset, len(data))
        if lo < hi:
            parts.append(data[lo:hi])
    return b"".join(parts)


def stream_key(stream: str, rank: int = 0) -> str:
    """The stored stream name of a rank's ``stream`` (see the module docstring)."""
    check_stream(stream)
    if rank == 0:
        return stream
    if not 0 < rank <= MAX_RANK:
        raise InvalidRequest(f"rank must be between 0 and {MAX_RANK} (got {rank})")
    return f"{stream[3:]}.{rank}"


def check_stream(stream: str) -> str:
    """``stream`` when it names one (routes check it before reading a body), else a 400."""
    if stream not in STREAMS:
        raise InvalidRequest(f"stream must be 'stdout' or 'stderr', not '{stream}'")
    return stream


def _check_job(conn: Connection, job_id: int) -> None:
    if conn.execute(select(jobs.c.id).where(jobs.c.id == job_id)).first() is None:
        raise NotFound(f"unknown job {job_id}", code="unknown_job")
