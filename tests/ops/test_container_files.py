"""The container image and compose file in deploy/ (issue #16 item 2).

No registry is reachable where the tests run, so the image is never built here. What can be
checked is: the compose file parses and wires what it promises (server on PostgreSQL, an
agent on fake GPUs, Prometheus and Grafana with the files they mount), the commands the
containers run exist with those options, every ``PROCPLAN_*`` variable given is a real setting
with a valid value, the image runs as a non-root user, and the wheel it installs builds and
holds the program, its entry points, the web UI and the migrations.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import missing_dependency

from procplan.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CONTAINERFILE = DEPLOY / "container" / "Containerfile"
PROCPLAN = Path(sys.executable).parent / "procplan"
# Variables the agent and the clients read (not server settings).
CLIENT_VARIABLES = {"PROCPLAN_URL", "PROCPLAN_AGENT_TOKEN", "PROCPLAN_TOKEN"}


def compose() -> dict[str, Any]:
    try:
        import yaml
    except ImportError:
        missing_dependency("PyYAML is not installed")
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def substituted(value: str) -> str:
    """A compose value with its ``${VAR...}`` interpolations replaced by a sample."""
    return re.sub(r"\$\{[^}]*\}", "sample", value)


def containerfile_env() -> dict[str, str]:
    """The ``ENV`` of the final stage (``KEY=value`` pairs, continued lines joined)."""
    text = CONTAINERFILE.read_text().replace("\\\n", " ")
    final = text.split("\nFROM ")[-1]
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``Settings`` as a server with exactly these ``PROCPLAN_*`` variables builds them."""
    import os

    for key in [k for k in os.environ if k.startswith("PROCPLAN_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("PROCPLAN_"):
            monkeypatch.setenv(key, value)
    return Settings()


def test_compose_runs_the_server_on_postgres_and_an_agent_on_fake_gpus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = compose()["services"]
    assert set(services) == {"db", "server", "agent", "prometheus", "grafana"}
    for name in ("server", "agent"):
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == CONTAINERFILE
    server, agent = services["server"], services["agent"]
    env = {k: substituted(str(v)) for k, v in server["environment"].items()}
    settings = settings_from(env, monkeypatch)
    assert settings.resolved_db_url().startswith("postgresql+psycopg://")
    assert "server" in settings.allowed_hosts  # the agent and Prometheus call it "server"
    assert settings.agent_token
    assert "db" in server["depends_on"]
    command = agent["command"]
    assert command[0] == "agent" and "--fake-gpus" in command
    assert command[command.index("--server") + 1] == "http://server:8080"
    assert set(agent["environment"]) <= CLIENT_VARIABLES


@pytest.mark.parametrize("service", ["server", "agent"])
def test_the_containers_commands_exist_with_those_options(service: str) -> None:
    command = [str(part) for part in compose()["services"][service]["command"]]
    done = subprocess.run(
        [str(PROCPLAN), *command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_procplan_variable_is_a_real_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {f"PROCPLAN_{name.upper()}" for name in Settings.model_fields}
    given = dict(containerfile_env())
    for service in compose()["services"].values():
        given.update({k: str(v) for k, v in (service.get("environment") or {}).items()})
    unknown = {k for k in given if k.startswith("PROCPLAN_")} - fields - CLIENT_VARIABLES
    assert not unknown, f"not ProcPlan settings: {sorted(unknown)}"
    # The image's defaults are valid settings on their own.
    image = settings_from(containerfile_env(), monkeypatch)
    assert (image.host, image.port, image.local_agent) == ("0.0.0.0", 8080, "off")


def test_the_image_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    text = CONTAINERFILE.read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    assert "pip wheel --no-deps" in text and '"$1[postgres]"' in text  # the wheel just built
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert re.search(r'^ENTRYPOINT \["procplan"\]', text, re.M)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^postgres = \[", pyproject, re.M)  # the extra the image installs


def test_prometheus_and_grafana_get_the_monitoring_files() -> None:
    services = compose()["services"]
    mounts = {
        name: {v.split(":")[1]: (DEPLOY / v.split(":")[0]) for v in svc.get("volumes", [])
               if v.startswith("./")}
        for name, svc in services.items()
    }  # fmt: skip
    for target, source in {**mounts["prometheus"], **mounts["grafana"]}.items():
        assert source.exists(), f"{source} (mounted at {target}) is missing"
    import yaml

    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert mounts["prometheus"]["/etc/prometheus/alerts.yml"].name == "alerts.yml"
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["server:8080"]
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "procplan.yml").read_text()
    )
    folder = provider["providers"][0]["options"]["path"]
    assert f"{folder}/procplan-dashboard.json" in mounts["grafana"]


@pytest.mark.slow
def test_the_wheel_builds_with_its_entry_points_web_ui_and_migrations(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode != 0 and re.search(r"(?i)connection|resolve|no matching distribution",
                                          done.stderr):  # fmt: skip
        missing_dependency(f"building the wheel needs hatchling from PyPI: {done.stderr[-500:]}")
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = tmp_path.glob("procplan-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = archive.read(info).decode()
        metadata = archive.read(info.replace("entry_points.txt", "METADATA")).decode()
    assert "procplan = procplan.cli.main:app" in entry_points
    assert "Provides-Extra: postgres" in metadata
    for needed in ("procplan/web/index.html", "procplan/store/migrations/env.py"):
        assert needed in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".db")]
    # It installs (without its dependencies: they come from PyPI in the image's build).
    target = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (target / "procplan" / "web" / "index.html").is_file()
    assert (target / "bin" / "procplan").is_file()
