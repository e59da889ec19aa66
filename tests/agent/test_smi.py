"""nvidia-smi fallback: parsing recorded outputs, and running a stand-in ``nvidia-smi``."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import psutil
import pytest

from procplan.agent.smi import SmiReader, parse_apps_query, parse_gpu_query
from procplan.core.model import GpuDevice
from procplan.core.readings import GpuProcess, GpuReader, GpuReadError, GpuReading

DATA = Path(__file__).parent / "data"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "nvidia-smi"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_eight_h100s_in_bus_order_with_readings() -> None:
    devices, readings = parse_gpu_query(recorded("h100x8.gpu.csv"))
    assert [d.index for d in devices] == list(range(8))
    assert devices[0] == GpuDevice(
        index=0,
        uuid="GPU-6b4c3d2a-1f0e-4a7b-9c8d-0e1f2a3b4c50",
        name="NVIDIA H100 80GB HBM3",
        memory_mb=81559,
    )
    assert readings[4] == GpuReading(
        index=4,
        uuid="GPU-6b4c3d2a-1f0e-4a7b-9c8d-0e1f2a3b4c54",
        utilization_pct=0.0,
        memory_used_mb=4,
        memory_total_mb=81559,
        temperature_c=31.0,
        power_w=69.91,
    )
    assert [r.uuid for r in readings] == [d.uuid for d in devices]
    assert not any(r.mig for r in readings)


def test_eight_h100s_processes() -> None:
    procs = parse_apps_query(recorded("h100x8.apps.csv"))
    assert len(procs) == 5
    assert procs[0] == GpuProcess(
        "GPU-6b4c3d2a-1f0e-4a7b-9c8d-0e1f2a3b4c50",
        2291841,
        80194,
        None,
        "/opt/conda/envs/train/bin/python",
    )
    assert procs[-1].command == "python3"


def test_a100_with_mig_enabled() -> None:
    devices, readings = parse_gpu_query(recorded("a100_mig.gpu.csv"))
    assert [d.name for d in devices] == ["NVIDIA A100-SXM4-40GB"] * 2
    assert readings[0].utilization_pct is None  # [N/A] on a GPU in MIG mode
    assert readings[0].power_w == 88.12
    procs = parse_apps_query(recorded("a100_mig.apps.csv"))
    assert [p.gpu_uuid[:4] for p in procs] == ["MIG-", "MIG-"]
    assert [p.used_memory_mb for p in procs] == [None, None]
    assert procs[1].command == "./bench"


def test_mig_rows_give_readings_after_their_gpu_but_no_devices() -> None:
    text = (
        "0, GPU-b, A100, 00000000:0F:00.0, 40960, 10, 0, 30, 50.0\n"
        "0, GPU-a, A100, 00000000:07:00.0, 40960, 9000, [N/A], 36, 88.1\n"
        "0, MIG-a1, A100, 00000000:07:00.0, 9728, 4000, N/A, N/A, N/A\n"
    )
    devices, readings = parse_gpu_query(text)
    assert [(d.index, d.uuid) for d in devices] == [(0, "GPU-a"), (1, "GPU-b")]
    assert [(r.index, r.uuid, r.mig) for r in readings] == [
        (0, "GPU-a", False),
        (0, "MIG-a1", True),
        (1, "GPU-b", False),
    ]
    assert readings[1].temperature_c is None
    assert readings[1].memory_total_mb == 9728


def test_consumer_gpu_not_supported_fields_are_none() -> None:
    devices, readings = parse_gpu_query(recorded("geforce.gpu.csv"))
    assert devices == [
        GpuDevice(0, "GPU-a0b1c2d3-e4f5-0617-2839-4a5b6c7d8e9f", "NVIDIA GeForce GT 1030", 2048)
    ]
    (reading,) = readings
    assert reading.utilization_pct is None
    assert reading.power_w is None
    assert reading.temperature_c == 41.0
    assert reading.memory_used_mb == 312
    assert parse_apps_query(recorded("geforce.apps.csv")) == []


def test_no_devices_and_garbage() -> None:
    assert parse_gpu_query(recorded("no_devices.txt")) == ([], [])
    assert parse_apps_query(recorded("no_devices.txt")) == []
    assert parse_gpu_query("") == ([], [])
    assert parse_gpu_query("WARNING: infoROM is corrupted at gpu 0000:01:00.0\n") == ([], [])
    assert parse_apps_query("GPU-x, notapid, 10, python\n") == []


def test_name_with_a_comma_and_empty_fields() -> None:
    devices, readings = parse_gpu_query("0, GPU-x, Odd, Name, 0000:01:00.0, 100, , 5, 40, \n")
    assert devices[0].name == "Odd, Name"
    assert readings[0].memory_used_mb is None
    assert readings[0].power_w is None


def test_reader_runs_the_command_and_resolves_users(tmp_path: Path) -> None:
    me = os.getpid()
    gpu_csv = DATA / "h100x8.gpu.csv"
    body = (
        'case "$1" in\n'
        f"  --query-gpu=*) cat {gpu_csv} ;;\n"
        f"  --query-compute-apps=*) echo 'GPU-6b4c3d2a-1f0e-4a7b-9c8d-0e1f2a3b4c50, {me}, 512, py'"
        " ;;\n"
        "  *) exit 2 ;;\n"
        "esac\n"
    )
    reader = SmiReader(command=script(tmp_path, body))
    assert isinstance(reader, GpuReader)
    assert len(reader.devices()) == 8
    assert reader.readings()[0].utilization_pct == 100.0
    (proc,) = reader.processes()
    assert proc.pid == me
    assert proc.used_memory_mb == 512
    assert proc.user == psutil.Process().username()
    assert proc.command  # the real command line of this test process
    reader.close()


def test_unknown_pid_keeps_smi_command(tmp_path: Path) -> None:
    body = "echo 'GPU-x, 999999999, 1, /usr/bin/python3'\n"
    (proc,) = SmiReader(command=script(tmp_path, body)).processes()
    assert (proc.user, proc.command) == (None, "/usr/bin/python3")


def test_no_devices_exit_code_is_an_empty_host(tmp_path: Path) -> None:
    reader = SmiReader(command=script(tmp_path, "echo 'No devices were found'\nexit 6\n"))
    assert reader.devices() == []
    assert reader.readings() == []


def test_driver_failure_is_a_read_error(tmp_path: Path) -> None:
    body = 'echo "NVIDIA-SMI has failed because it couldn\'t communicate" >&2\nexit 9\n'
    with pytest.raises(GpuReadError, match="exited with 9: NVIDIA-SMI has failed"):
        SmiReader(command=script(tmp_path, body)).readings()


def test_missing_command(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-nvidia-smi")
    assert not SmiReader.available(missing)
    with pytest.raises(GpuReadError, match="cannot run"):
        SmiReader(command=missing).devices()


def test_available_when_on_path(tmp_path: Path) -> None:
    assert SmiReader.available(script(tmp_path, "exit 0\n"))


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    body = f"sleep 30 &\necho $! > {pidfile}\nwait\n"
    reader = SmiReader(command=script(tmp_path, body), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(GpuReadError, match=r"did not answer within 0\.5s"):
        reader.readings()
    assert time.monotonic() - started < 4.0
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the grandchild sleep outlived the timeout"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
