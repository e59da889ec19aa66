"""NVML reader (nvidia-ml-py): the only module of ProcPlan that imports ``pynvml``.

NVML is opened lazily on the first read. Every read runs on a worker thread and is bounded
by ``timeout`` seconds: a wedged driver makes the read raise ``GpuReadError`` instead of
hanging the agent (the stuck thread is abandoned, it is a daemon, and the next read uses a
fresh one). Fields a device does not support come back as ``None``; MIG instances are
reported, best effort, as readings with ``mig=True`` after their GPU.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from procplan.agent.smi import describe_pid
from procplan.core.model import GpuDevice
from procplan.core.readings import GpuProcess, GpuReadError, GpuReading

T = TypeVar("T")
MIB = 1024 * 1024
_NOT_AVAILABLE = (1 << 63) - 1  # NVML's "value not available" sentinels are all above this
# Error names whose meaning is "this field is not there", not "the read failed".
_SOFT_ERRORS = (
    "NVML_ERROR_NOT_SUPPORTED",
    "NVML_ERROR_NOT_FOUND",
    "NVML_ERROR_NO_PERMISSION",
    "NVML_ERROR_FUNCTION_NOT_FOUND",
    "NVML_ERROR_NO_DATA",
)
_MISSING = object()


def _load_pynvml() -> Any:
    import pynvml

    return pynvml


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _mib(value: object) -> int | None:
    if not isinstance(value, int) or value < 0 or value > _NOT_AVAILABLE:
        return None
    return value // MIB


class _Worker:
    """One daemon thread that runs calls in order, with the NVML state it set up."""

    def __init__(self) -> None:
        self.initialized = False
        self.gpus: list[_Gpu] | None = None
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._loop, name="procplan-nvml", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return future

    def stop(self) -> None:
        self._jobs.put(None)


@dataclass(frozen=True, slots=True)
class _Gpu:
    device: GpuDevice
    handle: Any


class NvmlReader:
    """A ``GpuReader`` over NVML. ``nvml`` replaces the ``pynvml`` module (tests inject fakes)."""

    def __init__(self, *, nvml: Any = None, timeout: float = 2.0) -> None:
        self._nvml = nvml
        self.timeout = timeout
        self._worker: _Worker | None = None
        self._lock = threading.Lock()

    @classmethod
    def available(cls, *, nvml: Any = None, timeout: float = 2.0) -> bool:
        """Whether NVML loads and sees at least one GPU (False without the driver)."""
        if nvml is None:
            try:
                nvml = _load_pynvml()
            except ImportError:
                return False
        reader = cls(nvml=nvml, timeout=timeout)
        try:
            return bool(reader.devices())
        except GpuReadError:
            return False
        finally:
            reader.close()

    def __enter__(self) -> NvmlReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the GpuReader protocol ------------------------------------------------------------

    def devices(self) -> list[GpuDevice]:
        return [gpu.device for gpu in self._call(self._discover)]

    def readings(self) -> list[GpuReading]:
        return self._call(self._read_all)

    def processes(self) -> list[GpuProcess]:
        found = []
        for proc in self._call(self._processes):
            user, command = describe_pid(proc.pid)
            found.append(GpuProcess(proc.gpu_uuid, proc.pid, proc.used_memory_mb, user, command))
        return found

    def close(self) -> None:
        """Shut NVML down (bounded like any read; errors ignored) and stop the worker."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is None:
            return
        if worker.initialized:
            # Closing must not fail: the process may be going away.
            with contextlib.suppress(Exception):
                worker.submit(lambda: self._module().nvmlShutdown()).result(self.timeout)
        worker.stop()

    # -- running calls on the worker ------------------------------------------------------

    def _call(self, fn: Callable[[_Worker], T]) -> T:
        with self._lock:
            if self._worker is None:
                self._worker = _Worker()
            worker = self._worker
        future = worker.submit(lambda: fn(worker))
        try:
            return future.result(timeout=self.timeout)
        except TimeoutError:
            with self._lock:  # abandon the stuck thread; NVML state is unknown now
                if self._worker is worker:
                    self._worker = None
            worker.stop()
            raise GpuReadError(f"NVML did not answer within {self.timeout:g}s") from None
        except GpuReadError:
            raise
        except Exception as exc:
            if self._is_nvml_error(exc):
                raise GpuReadError(f"NVML: {exc}") from exc
            raise

    def _module(self) -> Any:
        if self._nvml is None:
            try:
                self._nvml = _load_pynvml()
            except ImportError as exc:
                raise GpuReadError("nvidia-ml-py is not installed") from exc
        return self._nvml

    def _is_nvml_error(self, exc: BaseException) -> bool:
        error_type = getattr(self._nvml, "NVMLError", None)
        return isinstance(error_type, type) and isinstance(exc, error_type)

    def _soft(self, name: str, *args: Any) -> Any:
        """``nvml.<name>(*args)``, or ``None`` when the field is unsupported or absent."""
        nvml = self._module()
        fn = getattr(nvml, name, None)
        if fn is None:
            return None
        try:
            return fn(*args)
        except Exception as exc:
            code = getattr(exc, "value", _MISSING)
            if self._is_nvml_error(exc) and code in self._soft_codes(nvml):
                return None
            raise

    @staticmethod
    def _soft_codes(nvml: Any) -> set[object]:
        return {getattr(nvml, name) for name in _SOFT_ERRORS if hasattr(nvml, name)}

    # -- worker-side reads (these run on the worker thread) --------------------------------

    def _discover(self, worker: _Worker) -> list[_Gpu]:
        nvml = self._module()
        if not worker.initialized:
            nvml.nvmlInit()
            worker.initialized = True
        if worker.gpus is not None:
            return worker.gpus
        found: list[tuple[str, int, str, str, int | None, Any]] = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            pci = self._soft("nvmlDeviceGetPciInfo", handle)
            bus = _text(getattr(pci, "busId", "")) if pci is not None else ""
            name = self._soft("nvmlDeviceGetName", handle)
            memory = self._soft("nvmlDeviceGetMemoryInfo", handle)
            uuid = _text(nvml.nvmlDeviceGetUUID(handle))
            total = _mib(getattr(memory, "total", None))
            found.append((bus.lower(), i, uuid, _text(name or "unknown"), total, handle))
        found.sort(key=lambda row: (_bus_key(row[0]), row[1]))
        worker.gpus = [
            _Gpu(GpuDevice(index=pos, uuid=uuid, name=name, memory_mb=total), handle)
            for pos, (_bus, _i, uuid, name, total, handle) in enumerate(found)
        ]
        return worker.gpus

    def _reading(self, index: int, uuid: str, handle: Any, mig: bool) -> GpuReading:
        utilization = self._soft("nvmlDeviceGetUtilizationRates", handle)
        memory = self._soft("nvmlDeviceGetMemoryInfo", handle)
        sensor = getattr(self._module(), "NVML_TEMPERATURE_GPU", 0)
        temperature = self._soft("nvmlDeviceGetTemperature", handle, sensor)
        power_mw = self._soft("nvmlDeviceGetPowerUsage", handle)
        gpu_util = getattr(utilization, "gpu", None)
        return GpuReading(
            index=index,
            uuid=uuid,
            utilization_pct=None if gpu_util is None else float(gpu_util),
            memory_used_mb=_mib(getattr(memory, "used", None)),
            memory_total_mb=_mib(getattr(memory, "total", None)),
            temperature_c=None if temperature is None else float(temperature),
            power_w=None if power_mw is None else power_mw / 1000.0,
            mig=mig,
        )

    def _mig_handles(self, handle: Any) -> list[tuple[str, Any]]:
        """``(uuid, handle)`` of each MIG instance of a GPU with MIG on; best effort."""
        nvml = self._module()
        try:
            mode = self._soft("nvmlDeviceGetMigMode", handle)
            if not mode or mode[0] != getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1):
                return []
            found = []
            for k in range(self._soft("nvmlDeviceGetMaxMigDeviceCount", handle) or 0):
                mig = self._soft("nvmlDeviceGetMigDeviceHandleByIndex", handle, k)
                if mig is not None:
                    found.append((_text(nvml.nvmlDeviceGetUUID(mig)), mig))
            return found
        except Exception as exc:
            if self._is_nvml_error(exc):
                return []
            raise

    def _read_all(self, worker: _Worker) -> list[GpuReading]:
        readings = []
        for gpu in self._discover(worker):
            device = gpu.device
            readings.append(self._reading(device.index, device.uuid, gpu.handle, mig=False))
            for uuid, mig in self._mig_handles(gpu.handle):
                readings.append(self._reading(device.index, uuid, mig, mig=True))
        return readings

    def _processes(self, worker: _Worker) -> list[GpuProcess]:
        found = []
        for gpu in self._discover(worker):
            targets = self._mig_handles(gpu.handle) or [(gpu.device.uuid, gpu.handle)]
            for uuid, handle in targets:
                for proc in self._soft("nvmlDeviceGetComputeRunningProcesses", handle) or []:
                    used = _mib(getattr(proc, "usedGpuMemory", None))
                    found.append(GpuProcess(uuid, int(proc.pid), used))
        return found


def _bus_key(bus_id: str) -> str:
    """``0000:18:00.0`` and ``00000000:18:00.0`` sort alike; unknown buses sort last."""
    if not bus_id:
        return "~"
    domain, _, rest = bus_id.partition(":")
    try:
        return f"{int(domain, 16):08x}:{rest}"
    except ValueError:
        return bus_id
