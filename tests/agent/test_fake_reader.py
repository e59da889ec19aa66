"""procplan.testing.FakeGpuReader as a scriptable GpuReader."""

from __future__ import annotations

import pytest

from procplan.core.model import GpuDevice
from procplan.core.readings import GpuProcess, GpuReader, GpuReadError, GpuReading
from procplan.testing import FakeGpuReader


def test_defaults_are_idle_and_deterministic() -> None:
    reader = FakeGpuReader(2, host="n1", memory_mb=40_000)
    assert isinstance(reader, GpuReader)
    assert reader.devices() == [
        GpuDevice(0, "GPU-fake-n1-00", "Simulated H100 80GB", 40_000),
        GpuDevice(1, "GPU-fake-n1-01", "Simulated H100 80GB", 40_000),
    ]
    assert reader.readings() == [
        GpuReading(0, "GPU-fake-n1-00", 0.0, 0, 40_000, 30.0, 60.0),
        GpuReading(1, "GPU-fake-n1-01", 0.0, 0, 40_000, 30.0, 60.0),
    ]
    assert reader.processes() == []
    assert FakeGpuReader(2, host="n1", memory_mb=40_000).readings() == reader.readings()


def test_node_is_unchanged() -> None:
    node = FakeGpuReader(2, host="n1").node()
    assert node.id == "n1"
    assert [(g.id, g.index, g.uuid) for g in node.gpus] == [
        ("n1-gpu0", 0, "GPU-fake-n1-00"),
        ("n1-gpu1", 1, "GPU-fake-n1-01"),
    ]
    assert FakeGpuReader(0).devices() == []
    with pytest.raises(ValueError, match="negative"):
        FakeGpuReader(-1)


def test_set_reading_scripts_one_gpu_and_keeps_the_rest() -> None:
    reader = FakeGpuReader(2)
    reader.set_reading(1, utilization_pct=97.0, memory_used_mb=70_000)
    reading = reader.set_reading(1, power_w=None, temperature_c=81.5)
    assert reading == reader.readings()[1]
    assert (reading.utilization_pct, reading.memory_used_mb) == (97.0, 70_000)
    assert (reading.power_w, reading.temperature_c) == (None, 81.5)
    assert reader.readings()[0].utilization_pct == 0.0
    reader.set_reading(0, mig=True)
    assert reader.readings()[0].mig


def test_set_reading_rejects_bad_input() -> None:
    reader = FakeGpuReader(2)
    with pytest.raises(ValueError, match="no GPU 2"):
        reader.set_reading(2, utilization_pct=1.0)
    with pytest.raises(ValueError, match="fixed"):
        reader.set_reading(0, uuid="GPU-other")
    with pytest.raises(TypeError):
        reader.set_reading(0, utilisation=5.0)


def test_processes_added_and_cleared() -> None:
    reader = FakeGpuReader(3, host="h")
    reader.add_process(0, 100, 2_000, "alice", "python train.py")
    reader.add_process(2, 200, None)
    reader.add_process(0, 101, 10, "bob")
    assert reader.processes() == [
        GpuProcess("GPU-fake-h-00", 100, 2_000, "alice", "python train.py"),
        GpuProcess("GPU-fake-h-02", 200, None, None, None),
        GpuProcess("GPU-fake-h-00", 101, 10, "bob", None),
    ]
    reader.clear_processes(0)
    assert [p.pid for p in reader.processes()] == [200]
    reader.clear_processes()
    assert reader.processes() == []
    with pytest.raises(ValueError, match="no GPU 3"):
        reader.add_process(3, 1)


def test_fail_next_fails_exactly_n_reads() -> None:
    reader = FakeGpuReader(1)
    reader.fail_next(3)
    with pytest.raises(GpuReadError):
        reader.readings()
    with pytest.raises(GpuReadError):
        reader.processes()
    assert len(reader.node("n").gpus) == 1  # node() never fails and uses no failure
    with pytest.raises(GpuReadError):
        reader.devices()
    assert len(reader.readings()) == 1
    reader.fail_next()
    with pytest.raises(GpuReadError, match="simulated"):
        reader.devices()
    assert reader.processes() == []
    with pytest.raises(ValueError):
        reader.fail_next(-1)


def test_close() -> None:
    reader = FakeGpuReader(1)
    reader.close()
    assert reader.closed
