"""Simulated GPUs for ``--demo`` and for tests: a ``GpuReader`` whose readings and processes
are set by hand (the demo drives it from the jobs that hold its GPUs).

It lives with the real readers (NVML, nvidia-smi) because the demo server runs it in
production; ``procplan.testing`` re-exports it for tests.
"""

from __future__ import annotations

import dataclasses

from procplan.core.model import GpuDevice, Node
from procplan.core.readings import GpuProcess, GpuReadError, GpuReading


class FakeGpuReader:
    """A host with ``count`` simulated GPUs, discovered like real ones.

    Deterministic: the UUIDs derive from ``host`` and the index, so a restarted demo server
    finds the same GPUs. It is a full ``GpuReader``: GPUs start idle (0 % utilization, no
    memory used, 30 °C, 60 W) until scripted with ``set_reading``; processes are added with
    ``add_process``; ``fail_next(n)`` makes the next ``n`` reads (``devices``, ``readings``,
    ``processes``) raise ``GpuReadError``. ``node()`` never fails.
    """

    IDLE_TEMPERATURE_C = 30.0
    IDLE_POWER_W = 60.0

    def __init__(
        self,
        count: int = 8,
        *,
        host: str = "localhost",
        model: str = "Simulated H100 80GB",
        memory_mb: int = 81_559,
    ) -> None:
        if count < 0:
            raise ValueError("count must not be negative")
        self.count = count
        self.host = host
        self.model = model
        self.memory_mb = memory_mb
        self.closed = False
        self._readings: dict[int, GpuReading] = {}
        self._processes: list[tuple[int, GpuProcess]] = []
        self._failures = 0

    def devices(self) -> list[GpuDevice]:
        """The GPUs in PCI bus order."""
        self._read()
        return self._devices()

    def readings(self) -> list[GpuReading]:
        """One reading per GPU, in index order: idle unless scripted."""
        self._read()
        return [self._readings.get(i) or self._idle(i) for i in range(self.count)]

    def processes(self) -> list[GpuProcess]:
        """The processes added with ``add_process``, in the order they were added."""
        self._read()
        return [proc for _index, proc in self._processes]

    def close(self) -> None:
        self.closed = True

    def set_reading(self, index: int, **fields: object) -> GpuReading:
        """Script GPU ``index``: e.g. ``set_reading(0, utilization_pct=97.0, power_w=None)``.

        Fields not given keep their current value; ``index``/``uuid`` cannot be changed.
        """
        self._check_index(index)
        if {"index", "uuid"} & fields.keys():
            raise ValueError("index and uuid are fixed")
        current = self._readings.get(index) or self._idle(index)
        reading = dataclasses.replace(current, **fields)  # type: ignore[arg-type]
        self._readings[index] = reading
        return reading

    def add_process(
        self,
        index: int,
        pid: int,
        used_memory_mb: int | None = None,
        user: str | None = None,
        command: str | None = None,
    ) -> GpuProcess:
        """A process on GPU ``index`` (readings are not changed: script them separately)."""
        self._check_index(index)
        proc = GpuProcess(self._uuid(index), pid, used_memory_mb, user, command)
        self._processes.append((index, proc))
        return proc

    def clear_processes(self, index: int | None = None) -> None:
        """Forget the processes of GPU ``index``, or of all GPUs."""
        self._processes = [(i, p) for i, p in self._processes if index is not None and i != index]

    def fail_next(self, n: int = 1) -> None:
        """The next ``n`` reads raise ``GpuReadError`` (like a wedged driver)."""
        if n < 0:
            raise ValueError("n must not be negative")
        self._failures = n

    def _read(self) -> None:
        if self._failures > 0:
            self._failures -= 1
            raise GpuReadError(f"simulated GPU read failure on {self.host}")

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.count:
            raise ValueError(f"no GPU {index} on {self.host} (it has {self.count})")

    def _uuid(self, index: int) -> str:
        return f"GPU-fake-{self.host}-{index:02d}"

    def _idle(self, index: int) -> GpuReading:
        return GpuReading(
            index=index,
            uuid=self._uuid(index),
            utilization_pct=0.0,
            memory_used_mb=0,
            memory_total_mb=self.memory_mb,
            temperature_c=self.IDLE_TEMPERATURE_C,
            power_w=self.IDLE_POWER_W,
        )

    def _devices(self) -> list[GpuDevice]:
        return [
            GpuDevice(
                index=i,
                uuid=self._uuid(i),
                name=self.model,
                memory_mb=self.memory_mb,
            )
            for i in range(self.count)
        ]

    def node(self, node_id: str | None = None) -> Node:
        """This host as a cluster node (id defaults to the host name)."""
        name = node_id or self.host
        return Node(id=name, name=name, gpus=tuple(d.as_gpu(name) for d in self._devices()))
