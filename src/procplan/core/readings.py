"""What a GPU reader reports about a host: live readings and GPU processes (plain data).

The readers themselves live in ``procplan.agent`` (NVML, nvidia-smi) and ``procplan.agent.fake``
(``FakeGpuReader``); they all satisfy :class:`GpuReader`. Any field a device cannot report
(``[Not Supported]``, ``[N/A]``, an NVML "not supported" error) is ``None``, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from procplan.core.model import GpuDevice


class GpuReadError(Exception):
    """A read failed as a whole: driver missing or broken, a call timed out, bad output."""


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU (or, with ``mig=True``, one MIG instance of GPU ``index``) at one moment."""

    index: int
    uuid: str
    utilization_pct: float | None
    memory_used_mb: int | None
    memory_total_mb: int | None
    temperature_c: float | None
    power_w: float | None
    mig: bool = False


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A process holding GPU memory; ``gpu_uuid`` may name a MIG instance (``MIG-...``)."""

    gpu_uuid: str
    pid: int
    used_memory_mb: int | None
    user: str | None = None
    command: str | None = None


@runtime_checkable
class GpuReader(Protocol):
    """A host's GPUs. Every method may raise :class:`GpuReadError`."""

    def devices(self) -> list[GpuDevice]:
        """The physical GPUs in PCI bus order (``index`` counts in that order)."""
        ...

    def readings(self) -> list[GpuReading]:
        """One reading per GPU, in ``devices()`` order; MIG instances follow their GPU."""
        ...

    def processes(self) -> list[GpuProcess]:
        """The compute processes on all GPUs."""
        ...

    def close(self) -> None:
        """Release the driver (a later call may open it again)."""
        ...
