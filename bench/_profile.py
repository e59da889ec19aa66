"""``--profile FILE.svg`` for the benchmarks: a py-spy flame graph of the server process.

Sampled while the measured workload runs, only where a thread holds the GIL (``--gil``: the
server's Python CPU, not its threads waiting on locks or sockets), one tower per thread
(``--threads``), at 100 Hz. py-spy is the optional ``profile`` extra
(``pip install -e '.[profile]'``); it reads the server's memory, so it needs the same user
(or root) and a kernel that allows ``ptrace`` of it.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def flame_graph(pid: int, out: Path | None, seconds: float) -> Iterator[None]:
    """Record ``pid`` for ``seconds`` (the workload's length) into ``out``; nothing when
    ``out`` is ``None``."""
    if out is None:
        yield
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [
        spy, "record", "--pid", str(pid), "--rate", "100", "--duration",
        str(math.ceil(seconds)), "--format", "flamegraph", "--output", str(out), "--gil",
        "--threads", "--nonblocking",
    ]  # fmt: skip
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        _, errors = recorder.communicate(timeout=seconds + 60)
        if recorder.returncode != 0:
            print(f"py-spy failed: {errors.decode(errors='replace')[-500:]}", file=sys.stderr)
        else:
            print(f"flame graph: {out}")
