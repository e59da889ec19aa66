"""Secrets at rest and in flight, against real server processes: ``--workers N`` get their
settings through a private file, never the environment; batch jobs of the embedded agents see no
ProcPlan secret; the logs of a start name neither the agent token nor the database password."""

from __future__ import annotations

import functools
import getpass
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy.engine import make_url

from procplan.handoff import HANDOFF_ENV, SECRET_ENV
from procplan.testing import ServerProcess, free_port, wait_until

TOKEN = "agent-tok-5b0e9d17"
PASSWORD = "pg-pw-c41f6a02"
until = functools.partial(wait_until, timeout=60.0, step=0.1)  # a loaded 2-core machine


def workers_of(server: ServerProcess, count: int) -> list[psutil.Process]:
    """The uvicorn worker processes of a ``--workers`` server, once ``count`` run."""

    def spawned() -> list[psutil.Process]:
        found = []
        for child in psutil.Process(server.pid).children(recursive=True):
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.NoSuchProcess:
                continue
        return found if len(found) >= count else []

    return until(spawned, what=f"{count} worker processes")


def assert_no_secret(environ: dict[str, str], *secrets: str) -> None:
    leaked = {name for name in environ if name.upper() in SECRET_ENV}
    assert not leaked, leaked
    for secret in secrets:
        assert not any(secret in value for value in environ.values()), secret


def private_handoff(environ: dict[str, str]) -> Path:
    """The worker's handoff file, checked: 0600 in a 0700 directory, both ours."""
    path = Path(environ[HANDOFF_ENV])
    for item, wanted in ((path, 0o600), (path.parent, 0o700)):
        info = item.lstat()
        assert (stat.S_IMODE(info.st_mode), info.st_uid) == (wanted, os.geteuid()), item
    return path


def api(url: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"X-ProcPlan-User": getpass.getuser(), **kwargs.pop("headers", {})}
    return httpx.request(method, url + path, headers=headers, timeout=30, **kwargs)


def run_env_job(url: str, workdir: Path) -> dict[str, str]:
    """Run ``env`` as a batch job on a demo node (its embedded agent launches it); the job's
    environment as it printed it."""
    body = {"command": ["env"], "workdir": str(workdir), "node_id": "node-a"}
    reply = api(url, "POST", "/api/v1/jobs", json=body)
    assert reply.status_code == 201, reply.text
    job_id = reply.json()["job_id"]

    def finished() -> dict[str, Any] | None:
        job = api(url, "GET", f"/api/v1/jobs/{job_id}").json()
        return job if job["state"] in ("completed", "failed", "cancelled", "lost") else None

    job = until(finished, what=f"job {job_id} ends")
    assert job["state"] == "completed", job
    lines = (workdir / f"procplan-{job_id}.out").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


@pytest.fixture
def worker_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    """``procplan server --workers 2 --demo`` with an agent token in its environment and
    debug logs in a file."""
    log = tmp_path / "server.log"
    server = ServerProcess(
        ["--workers", "2", "--demo", "--database", str(tmp_path / "w.db")],
        env={"PROCPLAN_AGENT_TOKEN": TOKEN, "PROCPLAN_LOG_LEVEL": "debug"},
        log_file=log,
    )
    with server:
        yield server, log


@pytest.mark.slow
def test_workers_and_jobs_get_no_secret_through_the_environment(
    worker_server: tuple[ServerProcess, Path], tmp_path: Path
) -> None:
    server, log = worker_server
    environs = [worker.environ() for worker in workers_of(server, 2)]
    handoffs = {private_handoff(environ) for environ in environs}
    assert len(handoffs) == 1  # one file, written by the parent
    handoff = handoffs.pop()
    local_token = json.loads(handoff.read_text())["local_token"]
    for environ in environs:
        assert_no_secret(environ, TOKEN, local_token)

    # The embedded agents authenticate with the handed-off token at whichever worker answers,
    # and the job they launch inherits nothing secret from the server.
    job_env = run_env_job(server.url, tmp_path)
    assert job_env["CUDA_VISIBLE_DEVICES"]
    assert_no_secret(job_env, TOKEN, local_token)

    server.stop()
    assert not handoff.parent.exists()
    text = log.read_text()
    assert "ProcPlan on http://" in text, text[-2000:]
    assert TOKEN not in text
    assert local_token not in text


def test_a_failed_start_names_neither_password_nor_token() -> None:
    url = f"postgresql+psycopg://procplan:{PASSWORD}@127.0.0.1:{free_port()}/procplan"
    env = {
        **os.environ,
        "PROCPLAN_DB_URL": url,
        "PROCPLAN_AGENT_TOKEN": TOKEN,
        "PROCPLAN_LOG_LEVEL": "debug",
    }
    done = subprocess.run(
        [sys.executable, "-m", "procplan.cli.main", "server", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "cannot start ProcPlan server" in output
    assert PASSWORD not in output
    assert TOKEN not in output


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("where", ["user", "query"])
def test_a_postgres_server_logs_and_hands_over_no_secret(
    pg_url: str, tmp_path: Path, where: str
) -> None:
    """The password in the URL's user part, or as ``?password=`` (which psycopg takes too)."""
    parsed = make_url(pg_url)
    if where == "user":
        parsed = parsed.set(password=PASSWORD)
    else:
        parsed = parsed.update_query_dict({"password": PASSWORD})
    url = parsed.render_as_string(hide_password=False)
    log = tmp_path / "server.log"
    env = {
        "PROCPLAN_DB_URL": url,
        "PROCPLAN_AGENT_TOKEN": TOKEN,
        "PROCPLAN_LOG_LEVEL": "debug",
        "PROCPLAN_LOCAL_AGENT": "off",
    }
    with ServerProcess(["--workers", "2"], env=env, log_file=log) as server:
        for environ in (worker.environ() for worker in workers_of(server, 2)):
            private_handoff(environ)
            assert_no_secret(environ, TOKEN, PASSWORD)
        for token in (TOKEN, "wrong-token"):  # an Authorization header is never logged
            reply = api(
                server.url,
                "POST",
                "/api/v1/agents/register",
                json={},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert reply.status_code in (400, 401), reply.text
    text = log.read_text()
    assert "ProcPlan on http://" in text, text[-2000:]
    assert PASSWORD not in text
    assert TOKEN not in text
