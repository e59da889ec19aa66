"""The job launcher with real subprocesses: environment, files, signals, exits, adoption."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from procplan.agent.launcher import Launcher, LaunchError, expand_path, job_environment
from procplan.agent.protocol import GpuRef, JobSpec, Key
from procplan.client import current_user
from procplan.testing import wait_until

ME = current_user()
PY = sys.executable


def spec(workdir: Path | None, *command: str, **fields: Any) -> JobSpec:
    fields.setdefault("user", ME)
    return JobSpec(
        id=fields.pop("id", 17),
        run=fields.pop("run", 0),
        command=command,
        workdir=None if workdir is None else str(workdir),
        **fields,
    )


def wait_exit(launcher: Launcher, key: Key) -> tuple[int | None, int | None]:
    found: dict[Key, tuple[int | None, int | None]] = {}

    def ended() -> bool:
        for k, code, signum in launcher.poll_exits():
            found[k] = (code, signum)
        return key in found

    wait_until(ended)
    return found[key]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    started = Launcher(tmp_path / "state", ME, allow_root_jobs=True)  # ME may be root
    yield started
    for key in list(started.sessions().values()):  # no job outlives its test
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


ENV_DUMP = "import json, os; print(json.dumps({'cwd': os.getcwd(), 'env': dict(os.environ)}))"


def test_job_environment_working_directory_and_default_log(
    launcher: Launcher, workdir: Path
) -> None:
    job = spec(
        workdir, PY, "-c", ENV_DUMP,
        gpus=(GpuRef("n1-gpu1", 1), GpuRef("n1-gpu3", 3)), nodes=("n1",),
        env=(("K", "V"), ("CUDA_VISIBLE_DEVICES", "overridden")),
    )  # fmt: skip
    pid = launcher.launch(job)
    assert pid > 0
    assert wait_exit(launcher, job.key) == (0, None)
    dumped = json.loads((workdir / "procplan-17.out").read_text())
    env = dumped["env"]
    assert Path(dumped["cwd"]) == workdir
    assert env["CUDA_VISIBLE_DEVICES"] == "1,3"
    assert env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert (env["PROCPLAN_JOB_ID"], env["PROCPLAN_GPUS"]) == ("17", "n1-gpu1,n1-gpu3")
    assert env["PROCPLAN_NODES"] == "n1"
    assert env["K"] == "V"
    assert env["USER"] == ME and "PATH" in env and "HOME" in env
    assert not {"MASTER_ADDR", "WORLD_SIZE", "NODE_RANK"} & env.keys()
    record = launcher.record(job.key)
    assert record is not None and record.pid == pid == record.pgid
    assert record.stdout == str(workdir / "procplan-17.out") and record.stderr is None


def test_multi_node_variables() -> None:
    job = JobSpec(
        id=1017, run=0, user="alice", command=("x",), nodes=("a", "b", "c"), node_rank=1,
        master_addr="10.0.0.5", array_id=1000, array_index=17,
    )  # fmt: skip
    env = job_environment(job, "/home/alice", base={"PATH": "/bin", "SECRET": "no"})
    names = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NNODES", "NODE_RANK")
    assert {k: env[k] for k in names} == {
        "MASTER_ADDR": "10.0.0.5", "MASTER_PORT": "29517", "WORLD_SIZE": "3", "NNODES": "3",
        "NODE_RANK": "1",
    }  # fmt: skip
    assert env["PROCPLAN_NODES"] == "a,b,c"
    assert env["CUDA_VISIBLE_DEVICES"] == "-1"  # no GPU: CUDA sees none
    assert (env["PROCPLAN_ARRAY_ID"], env["PROCPLAN_ARRAY_INDEX"]) == ("1000", "17")
    assert env["PATH"] == "/bin" and "SECRET" not in env
    assert (env["HOME"], env["USER"], env["LOGNAME"]) == ("/home/alice", "alice", "alice")
    explicit = job_environment(
        JobSpec(id=1, run=0, user="u", command=("x",), nodes=("a", "b"), master_port=4000),
        "/", base={},
    )  # fmt: skip
    assert (explicit["MASTER_ADDR"], explicit["MASTER_PORT"], explicit["NODE_RANK"]) == (
        "a",
        "4000",
        "0",
    )


def test_log_paths_placeholders_stderr_and_exit_code(launcher: Launcher, workdir: Path) -> None:
    (workdir / "logs").mkdir()
    job = spec(
        workdir, PY, "-c",
        "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)",
        stdout_path="logs/%x-%j.out", stderr_path=str(workdir / "logs" / "%j.err"), name="train",
    )  # fmt: skip
    launcher.launch(job)
    assert wait_exit(launcher, job.key) == (3, None)
    assert (workdir / "logs" / "train-17.out").read_text() == "out\n"
    assert (workdir / "logs" / "17.err").read_text() == "err\n"
    assert expand_path("%A_%a-%u-%%j", spec(None, "x", array_id=5, array_index=2)) == f"5_2-{ME}-%j"


def test_a_rerun_truncates_the_log_and_both_streams_share_it(
    launcher: Launcher, workdir: Path
) -> None:
    (workdir / "procplan-17.out").write_text("old run output, long enough to notice\n")
    job = spec(workdir, PY, "-c", "import sys; print('a', flush=True); print('b', file=sys.stderr)")
    launcher.launch(job)
    assert wait_exit(launcher, job.key) == (0, None)
    assert (workdir / "procplan-17.out").read_text() == "a\nb\n"


def test_sigterm_reaches_the_whole_process_group(launcher: Launcher, workdir: Path) -> None:
    script = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    job = spec(workdir, PY, "-c", script)
    pid = launcher.launch(job)
    out = workdir / "procplan-17.out"
    child = int(wait_until(lambda: out.read_text().strip()))
    assert launcher.sessions() == {pid: job.key}
    assert os.getsid(child) == pid  # the job's session: how GPU processes are matched
    assert launcher.signal(job.key, signal.SIGTERM)
    assert wait_exit(launcher, job.key) == (None, signal.SIGTERM)
    wait_until(lambda: gone(child))
    assert not launcher.signal(job.key, signal.SIGKILL)  # already gone: nothing sent


def test_what_the_command_leaves_behind_dies_with_it(launcher: Launcher, workdir: Path) -> None:
    job = spec(workdir, "/bin/sh", "-c", "sleep 60 & echo $!; exit 0")
    launcher.launch(job)
    out = workdir / "procplan-17.out"
    straggler = int(wait_until(lambda: out.read_text().strip()))
    assert wait_exit(launcher, job.key) == (0, None)
    wait_until(lambda: gone(straggler))


def test_refuses_other_users_jobs_when_not_root(
    launcher: Launcher, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 4321)
    with pytest.raises(LaunchError) as caught:
        launcher.launch(spec(workdir, "true", user="someone-else"))
    assert str(caught.value) == (
        f"the agent runs as '{ME}' and can only start {ME}'s jobs; run `procplan agent` as "
        "root to start jobs of other users"
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"workdir": "/no/such/dir"}, "working directory /no/such/dir does not exist on this node"),
        ({"command": ()}, "the job has no command"),
        ({"command": ("/no/such/program",)}, "cannot run /no/such/program: No such file"),
        (
            {"stdout_path": "missing-dir/out.txt"},
            "cannot open stdout .*/missing-dir/out.txt.*: No such file",
        ),
        ({"user": ""}, "the job names no user"),
    ],
)
def test_launch_errors_say_what_is_wrong(
    launcher: Launcher, workdir: Path, fields: dict[str, Any], message: str
) -> None:
    job = spec(workdir, "true")
    job = JobSpec(**{**{f: getattr(job, f) for f in job.__dataclass_fields__}, **fields})
    with pytest.raises(LaunchError, match=message.replace("(", r"\(")):
        launcher.launch(job)
    assert launcher.record(job.key) is None
    assert list(launcher.state_dir.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
def test_as_root_runs_the_job_as_its_user() -> None:
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' here")
    shared = Path(tempfile.mkdtemp(prefix="procplan-launch-", dir="/tmp"))
    try:
        shared.chmod(0o777)
        launcher = Launcher(shared / "state", "root")
        job = spec(shared, "/bin/sh", "-c", 'echo "$(id -u) $(id -g) $USER $HOME"', user="nobody")
        launcher.launch(job)
        assert wait_exit(launcher, job.key) == (0, None)
        log = shared / "procplan-17.out"
        assert log.read_text().split() == [
            str(nobody.pw_uid),
            str(nobody.pw_gid),
            "nobody",
            nobody.pw_dir,
        ]
        assert log.stat().st_uid == nobody.pw_uid
        with pytest.raises(LaunchError, match="unknown user 'no-such-user-here'"):
            launcher.launch(spec(shared, "true", user="no-such-user-here", id=18))
        # A log file planted by someone else is not taken over, even when it is writable.
        planted = shared / "procplan-19.out"
        planted.write_text("root's file\n")
        planted.chmod(0o666)
        with pytest.raises(LaunchError, match="belongs to another user"):
            launcher.launch(spec(shared, "true", user="nobody", id=19))
        assert planted.read_text() == "root's file\n"
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_a_restarted_agent_adopts_live_jobs_and_drops_dead_ones(
    tmp_path: Path, workdir: Path
) -> None:
    state = tmp_path / "state"
    first = Launcher(state, ME, allow_root_jobs=True)
    alive = spec(workdir, PY, "-c", "import time; time.sleep(60)", id=1)
    done = spec(workdir, "true", id=2)
    pid = first.launch(alive)
    first.launch(done)
    wait_exit(first, done.key)
    (state / "job-3-0.json").write_text("{not json")
    assert sorted(p.name for p in state.iterdir()) == [
        "job-1-0.json",
        "job-2-0.json",
        "job-3-0.json",
    ]

    second = Launcher(state, ME, allow_root_jobs=True)
    adopted = second.adoptable()
    assert [(r.key, r.pid, r.stdout) for r in adopted] == [
        (alive.key, pid, str(workdir / "procplan-1.out"))
    ]
    assert sorted(p.name for p in state.iterdir()) == ["job-1-0.json"]
    assert second.running() and second.sessions() == {pid: alive.key}
    assert second.poll_exits() == []
    assert second.signal(alive.key, signal.SIGKILL)
    assert wait_exit(second, alive.key) == (None, None)  # not our child: status unknown
    assert wait_exit(first, alive.key) == (None, signal.SIGKILL)  # its parent reaps it
    second.forget(alive.key)
    assert list(state.iterdir()) == []
    assert not second.running()
    first.forget(done.key)
