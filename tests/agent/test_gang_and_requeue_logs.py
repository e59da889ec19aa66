"""Gang jobs and requeued runs on the agent side (issue #19): the torchrun environment, one
log file per rank, and a requeued run appending to its log after a separator line."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procplan.agent.launcher import Launcher, job_environment, log_paths, run_separator
from procplan.agent.logship import LogShipper
from procplan.agent.protocol import GpuRef, JobSpec, Key, parse_spec
from procplan.client import current_user
from procplan.core.jobs import Job, JobState
from procplan.core.node_reports import DesiredRun
from procplan.testing import wait_until
from procplan.wire.agents import job_specs

ME = current_user()
PY = sys.executable


def spec(workdir: Path, *command: str, **fields: Any) -> JobSpec:
    fields.setdefault("user", ME)
    return JobSpec(
        id=fields.pop("id", 17),
        run=fields.pop("run", 0),
        command=command,
        workdir=str(workdir),
        **fields,
    )


def gpus(node: str, count: int) -> tuple[GpuRef, ...]:
    return tuple(GpuRef(f"{node}-gpu{i}", i) for i in range(count))


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    started = Launcher(tmp_path / "state", ME, allow_root_jobs=True)
    yield started
    for key in list(started.sessions().values()):
        started.signal(key, signal.SIGKILL)
    for _ in range(50):
        started.poll_exits()
        if not started.running():
            break
        time.sleep(0.02)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def wait_exit(launcher: Launcher, key: Key) -> None:
    wait_until(lambda: any(k == key for k, _code, _sig in launcher.poll_exits()))


# -- the environment of a gang ------------------------------------------------------------


def test_a_gang_gets_what_torchrun_expects() -> None:
    job = JobSpec(
        id=1017, run=0, user="alice", command=("x",), nodes=("a", "b", "c"), node_rank=2,
        master_addr="10.0.0.5", gpus=gpus("c", 4),
    )  # fmt: skip
    env = job_environment(job, "/home/alice", base={})
    names = ("MASTER_ADDR", "MASTER_PORT", "NNODES", "NODE_RANK", "GPUS_PER_NODE",
             "LOCAL_WORLD_SIZE", "WORLD_SIZE")  # fmt: skip
    assert {k: env[k] for k in names} == {
        "MASTER_ADDR": "10.0.0.5", "MASTER_PORT": "29517", "NNODES": "3", "NODE_RANK": "2",
        "GPUS_PER_NODE": "4", "LOCAL_WORLD_SIZE": "4", "WORLD_SIZE": "12",
    }  # fmt: skip
    assert env["CUDA_VISIBLE_DEVICES"] == "0,1,2,3"


def test_the_jobs_own_master_port_and_address_win() -> None:
    job = JobSpec(
        id=5, run=0, user="u", command=("x",), nodes=("a", "b"), master_port=29505,
        env=(("MASTER_PORT", "40000"), ("MASTER_ADDR", "ib0-a"), ("WORLD_SIZE", "99")),
        gpus=gpus("a", 2),
    )  # fmt: skip
    env = job_environment(job, "/", base={})
    assert (env["MASTER_PORT"], env["MASTER_ADDR"]) == ("40000", "ib0-a")
    assert env["WORLD_SIZE"] == "4"  # the count is ProcPlan's: the job cannot misstate it


def test_single_node_jobs_get_no_gang_variables() -> None:
    env = job_environment(JobSpec(id=5, run=0, user="u", command=("x",), nodes=("a",)), "/", {})
    assert not {"MASTER_ADDR", "WORLD_SIZE", "NODE_RANK", "GPUS_PER_NODE"} & env.keys()


# -- one log per rank ----------------------------------------------------------------------


def test_each_rank_writes_its_own_file(workdir: Path) -> None:
    def paths(rank: int, **fields: Any) -> tuple[str, str]:
        job = spec(workdir, "x", nodes=("a", "b"), node_rank=rank, **fields)
        return log_paths(job, str(workdir))

    assert paths(0) == (str(workdir / "procplan-17.out"),) * 2
    assert paths(1) == (str(workdir / "procplan-17.out.1"),) * 2
    assert paths(1, stdout_path="o-%j.txt", stderr_path="e-%j.txt") == (
        str(workdir / "o-17.txt.1"),
        str(workdir / "e-17.txt.1"),
    )
    assert paths(1, stdout_path="o-%j-%n.txt")[0] == str(workdir / "o-17-1.txt")  # named: kept
    assert paths(1, stdout_path="o-%%n.txt")[0] == str(workdir / "o-%n.txt.1")


def test_the_shipper_names_the_rank_and_starts_where_the_run_begins(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_bytes(b"run 0 output\nrun 1 output\n")
    shipper = LogShipper()
    shipper.track((1, 1), str(path), str(path), rank=3, starts=(13, 13))
    [chunk] = shipper.pending()
    assert (chunk.key, chunk.stream, chunk.offset, chunk.data, chunk.rank) == (
        (1, 1), "stdout", 0, b"run 1 output\n", 3,
    )  # fmt: skip
    shipper.acknowledge((1, 1), "stdout", chunk.end)
    with path.open("ab") as handle:
        handle.write(b"more\n")
    [more] = shipper.pending()
    assert (more.offset, more.data) == (13, b"more\n")


# -- a requeued run appends ------------------------------------------------------------------


def test_a_requeued_run_appends_after_a_separator(launcher: Launcher, workdir: Path) -> None:
    first = spec(workdir, PY, "-c", "print('first run')")
    launcher.launch(first)
    wait_exit(launcher, first.key)
    launcher.forget(first.key)
    log = workdir / "procplan-17.out"
    size = log.stat().st_size
    why = "preempted for job 12 (priority 100)"
    second = spec(workdir, PY, "-c", "print('second run')", run=1, previous_end=why)
    launcher.launch(second)
    wait_exit(launcher, second.key)
    text = log.read_text()
    assert text.startswith("first run\n==== procplan: job 17 run 2 (--run 1) started ")
    assert f"; previous run: {why} ====\nsecond run\n" in text
    record = launcher.record(second.key)
    assert record is not None and (record.stdout_start, record.stderr_start) == (size, size)
    again = spec(workdir, PY, "-c", "print('fresh')", id=17, run=0)  # a first run truncates
    launcher.forget(second.key)
    launcher.launch(again)
    wait_exit(launcher, again.key)
    assert log.read_text() == "fresh\n"


def test_the_separator_is_one_line_whatever_the_reason() -> None:
    job = JobSpec(id=3, run=2, user="u", command=("x",), previous_end="lost:\nnode down")
    line = run_separator(job, 1_795_428_000.0)
    assert line == (
        b"==== procplan: job 3 run 3 (--run 2) started 2026-11-23 10:00:00 UTC; "
        b"previous run: lost: node down ====\n"
    )


def test_the_server_tells_a_requeued_run_why_the_previous_one_ended() -> None:
    base = Job(id=4, user="u", command=("x",), state=JobState.RUNNING, node_ids=("n",))
    runs = [
        DesiredRun(base, (), 0, "n", 29504, None, 30),
        DesiredRun(
            Job(id=5, user="u", command=("x",), state=JobState.RUNNING, node_ids=("n",),
                requeues=1, message="booking 12 of carol on GPU n-gpu0 began at 10:00"),
            (), 0, "n", 29505, None, 30,
        ),
    ]  # fmt: skip
    first, requeued = (parse_spec(raw) for raw in job_specs(runs))
    assert first.previous_end is None
    assert requeued.previous_end == "booking 12 of carol on GPU n-gpu0 began at 10:00"
