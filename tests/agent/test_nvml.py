"""NvmlReader against a small fake ``pynvml``-like module (no GPU, no mocks)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import psutil
import pytest

from procplan.agent.nvml import NvmlReader
from procplan.core.model import GpuDevice
from procplan.core.readings import GpuProcess, GpuReader, GpuReadError

MIB = 1024 * 1024


class NVMLError(Exception):
    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


@dataclass
class Dev:
    uuid: str
    bus: str = ""
    name: str | bytes = "NVIDIA H100 80GB HBM3"
    total_mb: int = 81559
    used_mb: int = 0
    util: int = 0
    temp: int = 30
    power_mw: int = 70_000
    procs: list[tuple[int, int | None]] = field(default_factory=list)
    unsupported: set[str] = field(default_factory=set)
    broken: set[str] = field(default_factory=set)  # raise a hard error (GPU is lost)
    migs: list[Dev | None] | None = None  # None: MIG off; a None slot: no instance there


class FakeNvml:
    """The slice of the pynvml module that NvmlReader uses."""

    NVMLError = NVMLError
    NVML_ERROR_NOT_SUPPORTED = 3
    NVML_ERROR_NOT_FOUND = 6
    NVML_ERROR_LIBRARY_NOT_FOUND = 12
    NVML_ERROR_GPU_IS_LOST = 15
    NVML_TEMPERATURE_GPU = 0
    NVML_DEVICE_MIG_ENABLE = 1

    def __init__(self, devs: list[Dev], init_error: int | None = None) -> None:
        self.devs = devs
        self.init_error = init_error
        self.init_calls = 0
        self.shutdown_calls = 0
        self.hang_on: str | None = None
        self.release = threading.Event()

    def _field(self, name: str, dev: Dev) -> None:
        if name == self.hang_on:
            self.release.wait(10)
        if name in dev.unsupported:
            raise NVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        if name in dev.broken:
            raise NVMLError(self.NVML_ERROR_GPU_IS_LOST)

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdown_calls += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devs)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> Dev:
        return self.devs[i]

    def nvmlDeviceGetUUID(self, dev: Dev) -> str:
        return dev.uuid

    def nvmlDeviceGetName(self, dev: Dev) -> str | bytes:
        self._field("nvmlDeviceGetName", dev)
        return dev.name

    def nvmlDeviceGetPciInfo(self, dev: Dev) -> Any:
        return SimpleNamespace(busId=dev.bus.encode())

    def nvmlDeviceGetMemoryInfo(self, dev: Dev) -> Any:
        self._field("nvmlDeviceGetMemoryInfo", dev)
        total, used = dev.total_mb * MIB, dev.used_mb * MIB
        return SimpleNamespace(total=total, used=used, free=total - used)

    def nvmlDeviceGetUtilizationRates(self, dev: Dev) -> Any:
        self._field("nvmlDeviceGetUtilizationRates", dev)
        return SimpleNamespace(gpu=dev.util, memory=0)

    def nvmlDeviceGetTemperature(self, dev: Dev, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        self._field("nvmlDeviceGetTemperature", dev)
        return dev.temp

    def nvmlDeviceGetPowerUsage(self, dev: Dev) -> int:
        self._field("nvmlDeviceGetPowerUsage", dev)
        return dev.power_mw

    def nvmlDeviceGetComputeRunningProcesses(self, dev: Dev) -> list[Any]:
        self._field("nvmlDeviceGetComputeRunningProcesses", dev)
        return [
            SimpleNamespace(pid=pid, usedGpuMemory=None if mb is None else mb * MIB)
            for pid, mb in dev.procs
        ]

    def nvmlDeviceGetMigMode(self, dev: Dev) -> tuple[int, int]:
        if dev.migs is None:
            raise NVMLError(self.NVML_ERROR_NOT_SUPPORTED)
        return (1, 1)

    def nvmlDeviceGetMaxMigDeviceCount(self, dev: Dev) -> int:
        return len(dev.migs or [])

    def nvmlDeviceGetMigDeviceHandleByIndex(self, dev: Dev, k: int) -> Dev:
        mig = (dev.migs or [])[k]
        if mig is None:
            raise NVMLError(self.NVML_ERROR_NOT_FOUND)
        return mig


def two_gpus() -> FakeNvml:
    # NVML index 0 sits on the higher bus: the reader re-orders by PCI bus id.
    return FakeNvml(
        [
            Dev("GPU-b", bus="00000000:3B:00.0", used_mb=1024, util=97, temp=71, power_mw=612_450),
            Dev("GPU-a", bus="00000000:18:00.0", procs=[(os.getpid(), 2048), (999_999_999, None)]),
        ]
    )


def test_lazy_init_devices_in_bus_order_and_close() -> None:
    nvml = two_gpus()
    reader = NvmlReader(nvml=nvml)
    assert isinstance(reader, GpuReader)
    assert nvml.init_calls == 0
    assert reader.devices() == [
        GpuDevice(0, "GPU-a", "NVIDIA H100 80GB HBM3", 81559),
        GpuDevice(1, "GPU-b", "NVIDIA H100 80GB HBM3", 81559),
    ]
    reader.readings()
    assert nvml.init_calls == 1
    reader.close()
    assert nvml.shutdown_calls == 1
    reader.close()
    assert nvml.shutdown_calls == 1
    assert len(reader.devices()) == 2  # reopens after close
    assert nvml.init_calls == 2
    reader.close()


def test_readings_convert_units() -> None:
    with NvmlReader(nvml=two_gpus()) as reader:
        idle, busy = reader.readings()
    assert (idle.index, idle.uuid, idle.utilization_pct, idle.memory_used_mb) == (0, "GPU-a", 0, 0)
    assert busy.index == 1
    assert busy.utilization_pct == 97.0
    assert busy.memory_used_mb == 1024
    assert busy.memory_total_mb == 81559
    assert busy.temperature_c == 71.0
    assert busy.power_w == pytest.approx(612.45)
    assert not busy.mig


def test_processes_with_users() -> None:
    with NvmlReader(nvml=two_gpus()) as reader:
        mine, ghost = reader.processes()
    assert (mine.gpu_uuid, mine.pid, mine.used_memory_mb) == ("GPU-a", os.getpid(), 2048)
    assert mine.user == psutil.Process().username()
    assert mine.command
    assert ghost == GpuProcess("GPU-a", 999_999_999, None, None, None)


def test_not_supported_fields_become_none() -> None:
    unsupported = {
        "nvmlDeviceGetUtilizationRates",
        "nvmlDeviceGetTemperature",
        "nvmlDeviceGetPowerUsage",
        "nvmlDeviceGetComputeRunningProcesses",
        "nvmlDeviceGetName",
    }
    nvml = FakeNvml([Dev("GPU-x", bus="0000:01:00.0", used_mb=5, unsupported=unsupported)])
    with NvmlReader(nvml=nvml) as reader:
        (device,) = reader.devices()
        (reading,) = reader.readings()
        assert reader.processes() == []
    assert device.name == "unknown"
    assert reading.utilization_pct is None
    assert reading.temperature_c is None
    assert reading.power_w is None
    assert reading.memory_used_mb == 5


def test_hard_errors_are_read_errors() -> None:
    nvml = FakeNvml([Dev("GPU-x", broken={"nvmlDeviceGetPowerUsage"})])
    with NvmlReader(nvml=nvml) as reader, pytest.raises(GpuReadError, match="NVML"):
        reader.readings()


def test_no_driver_is_unavailable() -> None:
    nvml = FakeNvml([], init_error=FakeNvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    assert NvmlReader.available(nvml=nvml) is False
    with NvmlReader(nvml=nvml) as reader, pytest.raises(GpuReadError):
        reader.devices()
    assert nvml.shutdown_calls == 0  # never initialized, never shut down
    assert NvmlReader.available(nvml=FakeNvml([])) is False  # a driver but no GPU
    assert NvmlReader.available(nvml=two_gpus()) is True


def test_this_machine() -> None:
    """The real pynvml: unavailable here (no driver) means every read is a GpuReadError."""
    if NvmlReader.available():
        with NvmlReader() as reader:
            assert len(reader.readings()) >= len(reader.devices()) >= 1
    else:
        with NvmlReader() as reader, pytest.raises(GpuReadError):
            reader.readings()


def test_a_hanging_call_is_bounded_and_the_reader_recovers() -> None:
    nvml = two_gpus()
    nvml.hang_on = "nvmlDeviceGetUtilizationRates"
    reader = NvmlReader(nvml=nvml, timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(GpuReadError, match="did not answer"):
            reader.readings()
        assert time.monotonic() - started < 2.0
        nvml.hang_on = None
        nvml.release.set()
        assert len(reader.readings()) == 2  # a fresh worker thread, NVML opened again
        assert nvml.init_calls == 2
    finally:
        nvml.release.set()
        reader.close()


def test_mig_instances_follow_their_gpu() -> None:
    migs: list[Dev | None] = [
        Dev("MIG-1", total_mb=9728, used_mb=4000, unsupported={"nvmlDeviceGetUtilizationRates"}),
        None,
        Dev("MIG-2", total_mb=9728, procs=[(999_999_998, 300)]),
    ]
    nvml = FakeNvml(
        [
            Dev("GPU-mig", bus="0000:07:00.0", name=b"NVIDIA A100-SXM4-40GB", migs=migs),
            Dev("GPU-plain", bus="0000:0F:00.0", procs=[(999_999_997, 10)]),
        ]
    )
    with NvmlReader(nvml=nvml) as reader:
        assert reader.devices()[0].name == "NVIDIA A100-SXM4-40GB"
        readings = reader.readings()
        procs = reader.processes()
    assert [(r.index, r.uuid, r.mig) for r in readings] == [
        (0, "GPU-mig", False),
        (0, "MIG-1", True),
        (0, "MIG-2", True),
        (1, "GPU-plain", False),
    ]
    assert readings[1].memory_total_mb == 9728
    assert readings[1].utilization_pct is None
    assert [(p.gpu_uuid, p.pid, p.used_memory_mb) for p in procs] == [
        ("MIG-2", 999_999_998, 300),
        ("GPU-plain", 999_999_997, 10),
    ]
