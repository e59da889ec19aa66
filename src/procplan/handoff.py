"""Keeping the server's secrets out of process environments.

A process's environment is inherited by every child it starts (batch jobs of the embedded
agents, ``nvidia-smi``, uvicorn's worker processes) and can be read through
``/proc/<pid>/environ``, on some systems by other local users. So:

- ``forget_secret_environment`` drops the ``PROCPLAN_*`` variables that hold secrets (the
  agent token, a database URL with its password) once the settings have been read;
- ``worker_handoff`` gives ``--workers N`` processes their settings and the embedded agents'
  token in a file only the server's user can read, inside a fresh directory with an
  unpredictable name, and puts only that file's path in the environment. The file stays while
  the parent runs (uvicorn restarts dead workers) and is removed when it stops.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

HANDOFF_ENV = "PROCPLAN_INTERNAL_WORKER_HANDOFF"
# Settings read from the environment that are secrets (pydantic-settings matches names
# case-insensitively), plus the variables older versions used to hand secrets to workers.
SECRET_ENV = frozenset(
    {
        "PROCPLAN_AGENT_TOKEN",
        "PROCPLAN_DB_URL",
        "PROCPLAN_INTERNAL_LOCAL_TOKEN",
        "PROCPLAN_INTERNAL_WORKER_SETTINGS",
    }
)


def forget_secret_environment(environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Remove the secret ``PROCPLAN_*`` variables from ``environ`` (default: this process's,
    which children inherit); returns the names removed. Call it after the settings are read."""
    names = [name for name in environ if name.upper() in SECRET_ENV]
    for name in names:
        del environ[name]
    return names


@contextmanager
def worker_handoff(payload: str) -> Iterator[Path]:
    """Write ``payload`` to a new 0600 file in a new 0700 directory and publish the file's path
    in ``HANDOFF_ENV`` for the worker processes started inside the block; both go at its end.

    ``mkdtemp`` picks a random name and creates the directory 0700 atomically, so nobody can
    create it first or look inside; the file is created with ``O_EXCL`` and mode 0600, which a
    umask can only narrow, so it is never readable by others, not even for a moment.
    """
    directory = Path(tempfile.mkdtemp(prefix="procplan-workers-"))
    try:
        path = directory / "settings.json"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(path, flags, 0o600), "w", encoding="utf-8") as out:
            out.write(payload)
        os.environ[HANDOFF_ENV] = str(path)
        yield path
    finally:
        os.environ.pop(HANDOFF_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


def read_handoff() -> str:
    """The payload a ``worker_handoff`` of the parent process wrote. Refuses a file that is
    not this user's own private regular file: a worker never trusts what someone else put
    at that path."""
    raw = os.environ.get(HANDOFF_ENV)
    if not raw:
        raise RuntimeError(f"{HANDOFF_ENV} is not set: workers are started by `procplan server`")
    fd = os.open(raw, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, encoding="utf-8") as handoff:
        info = os.fstat(fd)
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_uid != os.geteuid()
            or stat.S_IMODE(info.st_mode) & 0o077
        ):
            raise RuntimeError(f"{raw} is not a private file of this user: not reading it")
        return handoff.read()
