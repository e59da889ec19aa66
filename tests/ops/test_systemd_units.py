"""The systemd units in deploy/systemd (issue #16 item 1): ``systemd-analyze verify`` finds no
problem in them, their commands exist, and they keep the hardening they promise (the server
confined and unprivileged; the agent root but not confining the jobs it starts)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import missing_dependency

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED = "/opt/procplan/venv/bin/procplan"
HERE_BIN = Path(sys.executable).parent / "procplan"


def unit(name: str) -> dict[str, list[str]]:
    """``[Service]`` of a unit file: each key with all its values (keys may repeat)."""
    values: dict[str, list[str]] = {}
    section = ""
    for line in (UNITS / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values.setdefault(f"{section}.{key}", []).append(value)
    return values


def test_systemd_analyze_verify_accepts_both_units(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        missing_dependency("systemd-analyze is not installed (apt-get install systemd)")
    assert tool is not None
    # verify wants ExecStart's program to exist: point the copies at this venv's procplan.
    names = sorted(p.name for p in UNITS.glob("*.service"))
    assert names == ["procplan-agent.service", "procplan-server.service"]
    for name in names:
        text = (UNITS / name).read_text()
        assert INSTALLED in text
        (tmp_path / name).write_text(text.replace(INSTALLED, str(HERE_BIN)))
    done = subprocess.run(
        [tool, "verify", *(str(tmp_path / n) for n in names)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    said = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if any(n in line for n in names) or str(tmp_path) in line
    ]
    # verify exits 0 on unknown keys and bad values too; it only says so.
    assert done.returncode == 0 and not said, done.stdout + done.stderr


def test_systemd_rates_the_server_unit_exposure_below_3(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        missing_dependency("systemd-analyze is not installed (apt-get install systemd)")
    assert tool is not None
    name = "procplan-server.service"
    copy = tmp_path / name
    copy.write_text((UNITS / name).read_text().replace(INSTALLED, str(HERE_BIN)))
    done = subprocess.run(
        [tool, "security", "--offline=yes", "--threshold=30", "--no-pager", str(copy)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if "--offline" in done.stderr and "unrecognized" in done.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    summary = [line for line in done.stdout.splitlines() if "Overall exposure" in line]
    print(*summary)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr


@pytest.mark.parametrize("name", ["procplan-server.service", "procplan-agent.service"])
def test_the_units_commands_exist_with_those_options(name: str) -> None:
    argv = shlex.split(unit(name)["Service.ExecStart"][0])
    assert argv[0] == INSTALLED
    done = subprocess.run(
        [str(HERE_BIN), *argv[1:], "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_server_runs_confined_as_its_own_user() -> None:
    server = unit("procplan-server.service")
    expected = {
        "User": "procplan", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
        "ProtectHome": "yes", "PrivateTmp": "yes", "CapabilityBoundingSet": "",
        "StateDirectory": "procplan", "EnvironmentFile": "/etc/procplan/procplan.env",
    }  # fmt: skip
    for key, value in expected.items():
        assert server.get(f"Service.{key}") == [value], key
    # The server reads other users' processes in /proc (peer identity, watched PIDs).
    assert "Service.ProtectProc" not in server


def test_the_agent_is_root_and_leaves_its_jobs_unconfined_and_running() -> None:
    agent = unit("procplan-agent.service")
    assert "Service.User" not in agent  # root: it switches to each job's account
    for key in ("NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp",
                "PrivateDevices", "RestrictSUIDSGID", "CapabilityBoundingSet",
                "ProtectClock", "DeviceAllow", "DevicePolicy"):  # fmt: skip
        assert f"Service.{key}" not in agent, f"{key} would confine the jobs too"
    assert agent["Service.KillMode"] == ["process"]  # a stop leaves the jobs running
    assert agent["Service.OOMPolicy"] == ["continue"]
    assert agent["Service.EnvironmentFile"] == ["/etc/procplan/agent.env"]


def test_the_environment_files_hold_the_token_and_say_chmod_600() -> None:
    for name in ("procplan.env.example", "agent.env.example"):
        text = (UNITS / name).read_text()
        assert "PROCPLAN_AGENT_TOKEN=" in text
        assert "install -m 600 -o root -g root" in text
    docs = (ROOT / "docs" / "operations.md").read_text()
    assert "chmod 600" in docs


def test_the_example_settings_file_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from procplan.config import Settings

    monkeypatch.delenv("PROCPLAN_SETTINGS", raising=False)
    settings = Settings(settings_file=UNITS / "procplan.toml.example")  # type: ignore[call-arg]
    assert (settings.host, settings.local_agent) == ("0.0.0.0", "off")
    # PROCPLAN_SETTINGS names the TOML file (config._toml_path); the others are settings.
    fields = {f"PROCPLAN_{name.upper()}" for name in Settings.model_fields} | {"PROCPLAN_SETTINGS"}
    server = unit("procplan-server.service")
    for line in server["Service.Environment"]:
        name = line.split("=", 1)[0]
        assert name in fields or not name.startswith("PROCPLAN_"), line
    for line in (UNITS / "procplan.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            assert line.split("=", 1)[0] in fields, line
