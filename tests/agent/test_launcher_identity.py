"""Nothing runs as someone else: the job's account, uid 0, and files opened as the job user.

The first tests need no privileges. The rest are end to end as root, with a Unix account
created for the test (``useradd``, removed afterwards): what that user could not open or
enter, the job cannot either; its logs are its own; and the server's PID watch does not
signal a process of another uid.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.conftest import missing_dependency
from typer.testing import CliRunner

from procplan.agent import asuser
from procplan.agent.asuser import Account, open_logs_as
from procplan.agent.daemon import AgentConfig, create_daemon
from procplan.agent.launcher import (
    ROOT_REFUSED,
    Launcher,
    LaunchError,
    expand_path,
    job_environment,
)
from procplan.agent.protocol import JobSpec, Key, parse_spec
from procplan.cli import agent as agent_cli
from procplan.cli.main import app
from procplan.core.jobs import Job
from procplan.service.leases import PidWatch
from procplan.testing import FakeGpuReader, wait_until

# -- without privileges ---------------------------------------------------------------------


def test_run_as_is_read_from_the_wire_and_optional() -> None:
    base = {"id": 3, "user": "ada", "command": ["true"]}
    assert parse_spec(base).run_as is None
    assert parse_spec({**base, "run_as": None}).run_as is None
    assert parse_spec({**base, "run_as": ""}).run_as is None
    assert parse_spec({**base, "run_as": "ada_l"}).run_as == "ada_l"


def test_the_account_is_run_as_and_the_procplan_user_stays_for_placeholders() -> None:
    job = JobSpec(id=5, run=0, user="ada", run_as="alovelace", command=("x",))
    env = job_environment(job, "/home/alovelace", base={})
    assert (env["USER"], env["LOGNAME"]) == ("alovelace", "alovelace")
    assert env["HOME"] == "/home/alovelace"
    assert expand_path("%u-%j.out", job) == "ada-5.out"


def test_a_non_root_agent_runs_only_its_own_account(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 4321)
    launcher = Launcher(tmp_path / "state", "ada")
    job = JobSpec(id=1, run=0, user="ada", run_as="someone-else", command=("true",))
    with pytest.raises(LaunchError, match="can only start ada's jobs"):
        launcher.launch(job)
    with pytest.raises(LaunchError, match="can only start ada's jobs"):
        launcher.launch(JobSpec(id=2, run=0, user="root", command=("true",)))


@pytest.mark.parametrize("fields", [{"user": "root"}, {"user": "ada", "run_as": "root"}])
def test_a_root_agent_refuses_uid_0_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # refused before anything is touched
    launcher = Launcher(tmp_path / "state", "root")
    assert launcher.allow_root_jobs is False
    with pytest.raises(LaunchError) as caught:
        launcher.launch(JobSpec(id=1, run=0, command=("true",), workdir=str(tmp_path), **fields))
    assert (
        str(caught.value)
        == ROOT_REFUSED
        == (
            "jobs do not run as root on this node; start the agent with --allow-root-jobs to "
            "permit it"
        )
    )
    assert list(launcher.state_dir.iterdir()) == []


def test_allow_root_jobs_goes_from_the_command_line_to_the_launcher(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[AgentConfig] = []

    def fake_run_agent(config: AgentConfig) -> int:
        seen.append(config)
        return 0

    monkeypatch.setattr(agent_cli, "run_agent", fake_run_agent)
    args = ["agent", "--token", "t", "--fake-gpus", "1", "--state-dir", str(tmp_path)]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert CliRunner().invoke(app, [*args, "--allow-root-jobs"]).exit_code == 0
    assert [config.allow_root_jobs for config in seen] == [False, True]
    for config in seen:
        daemon = create_daemon(config, FakeGpuReader(1), "fake")
        assert daemon.launcher.allow_root_jobs is config.allow_root_jobs
        daemon.client.close()
        daemon.poll_client.close()


# -- as root, with a Unix user made for the test ----------------------------------------------


@pytest.fixture
def unix_user() -> Iterator[pwd.struct_passwd]:
    if os.geteuid() != 0:
        missing_dependency("creating Unix users and switching to them needs root")
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        missing_dependency("useradd/userdel are not installed")
    name = f"pptest{secrets.token_hex(4)}"
    subprocess.run(
        ["useradd", "-M", "-s", "/usr/sbin/nologin", name], check=True, capture_output=True
    )
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


@pytest.fixture
def area(unix_user: pwd.struct_passwd) -> Iterator[Path]:
    """``/tmp/procplan-id-*`` (0755): ``work`` belongs to the user, ``root-only`` is 0700."""
    top = Path(tempfile.mkdtemp(prefix="procplan-id-", dir="/tmp"))
    try:
        top.chmod(0o755)
        (top / "work").mkdir()
        os.chown(top / "work", unix_user.pw_uid, unix_user.pw_gid)
        (top / "root-only").mkdir(mode=0o700)
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def launcher(area: Path) -> Iterator[Launcher]:
    started = Launcher(area / "state", "root")
    yield started
    for key in list(started.sessions().values()):
        started.signal(key, signal.SIGKILL)
    wait_until(lambda: bool(started.poll_exits()) or not started.running())


def job_of(user: str, area: Path, *command: str, **fields: Any) -> JobSpec:
    return JobSpec(
        id=fields.pop("id", 41), run=0, user=user, command=command or ("true",),
        workdir=fields.pop("workdir", str(area / "work")), **fields,
    )  # fmt: skip


def wait_exit(launcher: Launcher, key: Key) -> tuple[int | None, int | None]:
    found: dict[Key, tuple[int | None, int | None]] = {}

    def ended() -> bool:
        found.update({k: (code, sig) for k, code, sig in launcher.poll_exits()})
        return key in found

    wait_until(ended)
    return found[key]


@pytest.mark.parametrize(
    "fields",
    [
        {"stdout_path": "{area}/root-only/out.txt"},
        {"stdout_path": "../root-only/out.txt"},  # relative to the working directory
        {"stderr_path": "{area}/root-only/err.txt"},
    ],
)
def test_a_log_file_the_user_could_not_create_fails_the_launch(
    launcher: Launcher, area: Path, unix_user: pwd.struct_passwd, fields: dict[str, str]
) -> None:
    fields = {k: v.format(area=area) for k, v in fields.items()}
    job = job_of(unix_user.pw_name, area, **fields)
    with pytest.raises(LaunchError) as caught:
        launcher.launch(job)
    what = "stderr" if "stderr_path" in fields else "stdout"
    target = area / "root-only" / ("err.txt" if what == "stderr" else "out.txt")
    assert str(caught.value) == (
        f"cannot open {what} {target} as {unix_user.pw_name}: Permission denied"
    )
    assert list((area / "root-only").iterdir()) == []  # nothing created there
    assert launcher.record(job.key) is None and not launcher.running()


def test_a_working_directory_the_user_cannot_enter_fails_the_launch(
    launcher: Launcher, area: Path, unix_user: pwd.struct_passwd
) -> None:
    hidden = area / "root-only" / "inner"
    hidden.mkdir(mode=0o777)  # open itself, but behind a 0700 directory
    with pytest.raises(LaunchError) as caught:
        launcher.launch(job_of(unix_user.pw_name, area, workdir=str(hidden)))
    assert str(caught.value) == (
        f"cannot enter working directory {hidden} as {unix_user.pw_name}: Permission denied"
    )
    assert list(hidden.iterdir()) == []
    with pytest.raises(LaunchError, match="working directory /no/such/dir does not exist"):
        launcher.launch(job_of(unix_user.pw_name, area, workdir="/no/such/dir"))


def test_a_job_runs_as_its_account_and_its_logs_are_its_own(
    launcher: Launcher, area: Path, unix_user: pwd.struct_passwd
) -> None:
    script = 'echo "$(id -u) $(id -g) $USER"; echo err >&2'
    job = job_of(
        "procplan-ada", area, "/bin/sh", "-c", script, run_as=unix_user.pw_name,
        stdout_path="%u-%j.out", stderr_path="%u-%j.err",
    )  # fmt: skip
    launcher.launch(job)
    assert wait_exit(launcher, job.key) == (0, None)
    out, err = area / "work" / "procplan-ada-41.out", area / "work" / "procplan-ada-41.err"
    uid, gid = unix_user.pw_uid, unix_user.pw_gid
    assert out.read_text().split() == [str(uid), str(gid), unix_user.pw_name]
    assert err.read_text() == "err\n"
    for path in (out, err):
        info = path.stat()
        assert (info.st_uid, info.st_gid) == (uid, gid)
        assert info.st_mode & 0o7777 == 0o644 & ~_umask()


def test_root_jobs_run_only_when_allowed(area: Path) -> None:
    refusing = Launcher(area / "state", "root")
    with pytest.raises(LaunchError, match="--allow-root-jobs"):
        refusing.launch(job_of("root", area, "true"))
    allowing = Launcher(area / "state", "root", allow_root_jobs=True)
    job = job_of("root", area, "/bin/sh", "-c", "id -u")
    allowing.launch(job)
    assert wait_exit(allowing, job.key) == (0, None)
    assert (area / "work" / "procplan-41.out").read_text() == "0\n"


def test_a_fifo_is_refused_without_blocking(
    launcher: Launcher, area: Path, unix_user: pwd.struct_passwd
) -> None:
    fifo = area / "work" / "pipe"
    os.mkfifo(fifo, 0o666)
    os.chown(fifo, unix_user.pw_uid, unix_user.pw_gid)
    with pytest.raises(LaunchError, match=r"cannot open stdout .*pipe as .*: No such device"):
        launcher.launch(job_of(unix_user.pw_name, area, stdout_path=str(fifo)))


def test_a_helper_that_hangs_is_killed_and_reaped(
    area: Path, unix_user: pwd.struct_passwd, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hang(*_args: object) -> int:  # a stuck network file system, in the child
        time.sleep(60)
        return -1

    monkeypatch.setattr(asuser, "open_log", hang)
    before = {child.pid for child in psutil.Process().children()}
    with pytest.raises(LaunchError, match=r"took longer than 0\.3 s"):
        open_logs_as(Account.of(unix_user), str(area / "work"), [("stdout", "x")], timeout_s=0.3)
    wait_until(lambda: {c.pid for c in psutil.Process().children()} <= before)


def test_pid_watch_signals_only_processes_of_the_jobs_uid(
    unix_user: pwd.struct_passwd, caplog: pytest.LogCaptureFixture
) -> None:
    sleeper = subprocess.Popen(
        ["sleep", "30"], user=unix_user.pw_uid, group=unix_user.pw_gid, extra_groups=[]
    )
    try:
        watch = PidWatch()
        for job in (
            Job(id=1, user="root", pid=sleeper.pid),  # root's job names the user's process
            Job(id=2, user=unix_user.pw_name, pid=sleeper.pid, extra={"pid_uid": 0}),
            Job(id=3, user="no-such-user-here", pid=sleeper.pid),
        ):
            watch.signal(job, signal.SIGKILL)
        time.sleep(0.2)
        assert sleeper.poll() is None
        assert len([r for r in caplog.records if "not signalling" in r.getMessage()]) == 3

        received: list[int] = []
        previous = signal.signal(signal.SIGUSR1, lambda signum, _frame: received.append(signum))
        try:
            watch.signal(Job(id=4, user="root", pid=os.getpid()), signal.SIGUSR1)
            time.sleep(0.1)
        finally:
            signal.signal(signal.SIGUSR1, previous)
        assert received == []

        watch.signal(Job(id=5, user=unix_user.pw_name, pid=sleeper.pid), signal.SIGKILL)
        assert sleeper.wait(10) == -signal.SIGKILL  # its own user's process: signalled
    finally:
        sleeper.kill()
        sleeper.wait()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
