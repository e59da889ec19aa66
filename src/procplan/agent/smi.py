"""``nvidia-smi`` fallback reader: for hosts where NVML cannot be loaded from Python.

Two CSV queries, each run with a time limit in its own process group, so that a hung
``nvidia-smi`` (a wedged driver does that) is killed with any children and reaped. The parse
functions are pure and take the recorded text, so tests need no GPU.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Sequence

import psutil

from procplan.core.model import GpuDevice
from procplan.core.readings import GpuProcess, GpuReadError, GpuReading

GPU_FIELDS = (
    "index,uuid,name,pci.bus_id,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw"
)
APP_FIELDS = "gpu_uuid,pid,used_memory,process_name"
GPU_QUERY = (f"--query-gpu={GPU_FIELDS}", "--format=csv,noheader,nounits")
APP_QUERY = (f"--query-compute-apps={APP_FIELDS}", "--format=csv,noheader,nounits")

_MISSING = {"", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]"}
_NO_DEVICES = "no devices were found"
_NO_PROCESSES = "no running processes found"


def _value(raw: str) -> str | None:
    text = raw.strip()
    return None if text.lower() in _MISSING else text


def _float(raw: str) -> float | None:
    text = _value(raw)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _int(raw: str) -> int | None:
    number = _float(raw)
    return None if number is None else int(number)


def _bus_key(bus_id: str | None) -> str:
    # nvidia-smi prints "00000000:18:00.0"; NVML may print the 4-digit domain form.
    if bus_id is None:
        return "~"
    domain, _, rest = bus_id.strip().lower().rpartition(":")
    domain, _, bus = domain.rpartition(":") if ":" in domain else ("", "", domain)
    try:
        return f"{int(domain or '0', 16):08x}:{bus}:{rest}"
    except ValueError:
        return bus_id


def parse_gpu_query(text: str) -> tuple[list[GpuDevice], list[GpuReading]]:
    """Parse ``--query-gpu`` output: physical GPUs in PCI bus order and their readings.

    Indexes are re-counted in PCI bus order. A row whose uuid starts with ``MIG-`` is a MIG
    instance: it gives a reading (``mig=True``, the index of the GPU listed before it) but no
    device. "No devices were found" gives two empty lists; malformed lines are skipped.
    """
    rows: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.strip().lower().startswith(_NO_DEVICES):
            continue
        raw = line.split(",")
        if len(raw) < 9:
            continue
        # A name with commas in it: index, uuid, name..., then the six trailing fields.
        fields = [part.strip() for part in (raw[0], raw[1], ",".join(raw[2:-6]), *raw[-6:])]
        rows.append((fields[1], fields))
    physical = [f for uuid, f in rows if not uuid.startswith("MIG-")]
    physical.sort(key=lambda f: (_bus_key(_value(f[3])), _int(f[0]) or 0))
    index_of = {f[1]: i for i, f in enumerate(physical)}
    devices = [
        GpuDevice(index=index_of[f[1]], uuid=f[1], name=f[2], memory_mb=_int(f[4]))
        for f in physical
    ]
    readings: list[GpuReading] = []
    parent = -1
    for uuid, f in rows:
        mig = uuid.startswith("MIG-")
        if not mig:
            parent = index_of[uuid]
        readings.append(_reading(parent, f, mig))
    # Each GPU in bus order, its MIG instances right after it (stable sort keeps their order).
    ordered = sorted(readings, key=lambda r: (r.index, r.mig))
    return devices, ordered


def _reading(index: int, f: list[str], mig: bool) -> GpuReading:
    return GpuReading(
        index=index,
        uuid=f[1],
        utilization_pct=_float(f[6]),
        memory_used_mb=_int(f[5]),
        memory_total_mb=_int(f[4]),
        temperature_c=_float(f[7]),
        power_w=_float(f[8]),
        mig=mig,
    )


def parse_apps_query(text: str) -> list[GpuProcess]:
    """Parse ``--query-compute-apps`` output (no user names: see ``describe_pid``)."""
    processes: list[GpuProcess] = []
    for line in text.splitlines():
        if not line.strip() or line.strip().lower().startswith((_NO_PROCESSES, _NO_DEVICES)):
            continue
        fields = line.split(",")
        if len(fields) < 4:
            continue
        uuid, pid = fields[0].strip(), _int(fields[1])
        if pid is None or not uuid:
            continue
        command = _value(",".join(fields[3:]))
        processes.append(GpuProcess(uuid, pid, _int(fields[2]), None, command))
    return processes


def describe_pid(pid: int) -> tuple[str | None, str | None]:
    """``(user, command line)`` of a local process; ``None`` for what cannot be seen."""
    try:
        proc = psutil.Process(pid)
    except (psutil.Error, ValueError):
        return None, None
    try:
        user: str | None = proc.username()
    except (psutil.Error, KeyError):
        user = None
    try:
        command: str | None = " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        command = None
    return user, command


class SmiReader:
    """A ``GpuReader`` that runs ``nvidia-smi`` (``command``: a path or an argv prefix)."""

    def __init__(self, command: str | Sequence[str] = "nvidia-smi", timeout: float = 5.0) -> None:
        self.command = [command] if isinstance(command, str) else list(command)
        self.timeout = timeout

    @classmethod
    def available(cls, command: str = "nvidia-smi") -> bool:
        """Whether ``command`` is an executable on PATH (or an executable path)."""
        return shutil.which(command) is not None

    def devices(self) -> list[GpuDevice]:
        return parse_gpu_query(self._run(GPU_QUERY))[0]

    def readings(self) -> list[GpuReading]:
        return parse_gpu_query(self._run(GPU_QUERY))[1]

    def processes(self) -> list[GpuProcess]:
        found = []
        for proc in parse_apps_query(self._run(APP_QUERY)):
            user, command = describe_pid(proc.pid)
            found.append(
                GpuProcess(
                    proc.gpu_uuid, proc.pid, proc.used_memory_mb, user, command or proc.command
                )
            )
        return found

    def close(self) -> None:
        """Nothing to release: every read is its own process."""

    def _run(self, args: Sequence[str]) -> str:
        argv = [*self.command, *args]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: killed whole on timeout
            )
        except OSError as exc:
            raise GpuReadError(f"cannot run {argv[0]}: {exc}") from exc
        try:
            out, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise GpuReadError(f"{argv[0]} did not answer within {self.timeout:g}s") from None
        stdout = out.decode(errors="replace")
        if proc.returncode != 0 and _NO_DEVICES not in stdout.lower():
            message = (err.decode(errors="replace") or stdout).strip()[-500:]
            raise GpuReadError(f"{argv[0]} exited with {proc.returncode}: {message}")
        return stdout


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's process group, reap the child and close its pipes."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    try:
        proc.communicate(timeout=2.0)
    except subprocess.TimeoutExpired:  # a grandchild left the group and holds the pipes
        proc.wait()
    finally:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
