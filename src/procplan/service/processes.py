"""Who owns a process on this host: the check behind "nothing runs as someone else".

The server watches and signals client PIDs (``leases``) and the API accepts PIDs from clients
(``/acquire``, ``procplan run``). A PID is only a number a client sends: before the server
acts on it, or ties a job to it, it asks the kernel whose process it is. The real uid is the
one that counts — it is who started the process; a setuid program keeps its caller's real
uid.
"""

from __future__ import annotations

import psutil


def process_owner_uid(pid: int) -> int | None:
    """The real uid of process ``pid``; ``None`` when there is no such process (an exited
    one not yet reaped, a zombie, counts as gone) or its owner cannot be read."""
    if pid <= 0:
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return int(process.uids().real)
    except psutil.Error:
        return None
