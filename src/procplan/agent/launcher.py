"""Starting, signalling and reaping batch job processes (ADR 0006 §7).

Each job runs in a new session (its own process group, so a signal reaches all its
processes), in its working directory, with its environment plus the GPU variables. As root
the command runs as the job's account (``run_as``, else its user) and everything the job names
— working directory, log files — is checked and opened with that account's rights
(``asuser``); a job whose account is uid 0 runs only where the agent was started with
``--allow-root-jobs``. As anyone else only the agent user's own jobs run. Every
launched job leaves a state file ``job-<id>-<run>.json`` in the state directory, so a
restarted agent adopts the jobs that are still alive (``adoptable``): jobs do not die with the
agent.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from procplan.agent.asuser import Account, LaunchError, open_log, open_logs_as
from procplan.agent.protocol import JobSpec, Key

__all__ = [
    "JobProcess",
    "LaunchError",
    "Launcher",
    "expand_path",
    "gang_environment",
    "job_environment",
    "log_paths",
]

log = logging.getLogger("procplan.agent")

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MASTER_PORT_BASE = 29500
INHERITED = ("PATH", "LANG", "LC_ALL", "TZ")  # from the agent, unless the job sets them
_CREATE_TIME_SLACK = 0.05
STOP_GRACE_S = 1.0  # ``stop_all``: SIGTERM, then SIGKILL after this
ROOT_REFUSED = (
    "jobs do not run as root on this node; start the agent with --allow-root-jobs to permit it"
)


@dataclass(frozen=True, slots=True)
class JobProcess:
    """A launched job's process, as written to its state file."""

    job_id: int
    run: int
    pid: int
    pgid: int
    create_time: float
    started_at: float
    user: str
    stdout: str | None
    stderr: str | None
    rank: int = 0  # the node's rank in a multi-node job: its log is stored apart
    stdout_start: int = 0  # where this run's output begins in the (appended) files
    stderr_start: int = 0

    @property
    def key(self) -> Key:
        return (self.job_id, self.run)


def account_name(spec: JobSpec) -> str:
    """The Unix account the job runs as: ``run_as`` when the server names one (the ProcPlan
    user name need not be an account here), else the user."""
    return spec.run_as or spec.user


def expand_path(template: str, spec: JobSpec) -> str:
    """Slurm-style placeholders: ``%j`` job id, ``%A``/``%a`` array id/index, ``%u`` user,
    ``%x`` job name, ``%n`` the node's rank in the job, ``%%`` a percent sign."""
    values = {
        "j": str(spec.id),
        "n": str(spec.node_rank),
        "A": str(spec.array_id if spec.array_id is not None else spec.id),
        "a": str(spec.array_index if spec.array_index is not None else 0),
        "u": spec.user,
        "x": spec.name or "job",
        "%": "%",
    }
    out, i = [], 0
    while i < len(template):
        char = template[i]
        if char == "%" and i + 1 < len(template) and template[i + 1] in values:
            out.append(values[template[i + 1]])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def log_paths(spec: JobSpec, workdir: str) -> tuple[str, str]:
    """``(stdout, stderr)`` absolute paths; stderr defaults to the stdout file. Each node of
    a multi-node job writes its own files (one log per rank, even on a shared file system):
    rank N > 0 appends ``.N`` to a path that does not name the rank with ``%n``."""

    def path(template: str) -> str:
        expanded = os.path.join(workdir, expand_path(template, spec))
        if spec.node_rank > 0 and "%n" not in template.replace("%%", ""):
            expanded = f"{expanded}.{spec.node_rank}"
        return os.path.normpath(expanded)

    stdout = path(spec.stdout_path or f"procplan-{spec.id}.out")
    stderr = path(spec.stderr_path) if spec.stderr_path else stdout
    return stdout, stderr


def run_separator(spec: JobSpec, at: float) -> bytes:
    """The line a requeued job's run starts its (appended) log with: which run, and why the
    previous one ended (the server's ``previous_end``)."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
    why = " ".join((spec.previous_end or "ended").split())
    return (
        f"==== procplan: job {spec.id} run {spec.run + 1} (--run {spec.run}) started {when}; "
        f"previous run: {why} ====\n"
    ).encode("utf-8", "replace")


def job_environment(
    spec: JobSpec, home: str, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The job's environment: a minimal base (PATH, locale, HOME/USER/LOGNAME), the job's
    own variables in order, then the GPU and ProcPlan variables, which always win."""
    source = os.environ if base is None else base
    env = {name: source[name] for name in INHERITED if name in source}
    env.setdefault("PATH", DEFAULT_PATH)
    account = account_name(spec)
    env.update(HOME=home, USER=account, LOGNAME=account)
    env.update(spec.env)
    indices = ",".join(str(gpu.index) for gpu in spec.gpus)
    env.update(
        CUDA_VISIBLE_DEVICES=indices or "-1",
        CUDA_DEVICE_ORDER="PCI_BUS_ID",
        PROCPLAN_JOB_ID=str(spec.id),
        PROCPLAN_GPUS=",".join(gpu.id for gpu in spec.gpus),
        PROCPLAN_NODES=",".join(spec.nodes),
    )
    if spec.array_id is not None and spec.array_index is not None:
        env.update(PROCPLAN_ARRAY_ID=str(spec.array_id), PROCPLAN_ARRAY_INDEX=str(spec.array_index))
    if len(spec.nodes) > 1:
        env.update(gang_environment(spec, dict(spec.env)))
    return env


def gang_environment(spec: JobSpec, job_env: Mapping[str, str]) -> dict[str, str]:
    """What ``torchrun --nnodes=$NNODES --node-rank=$NODE_RANK --nproc-per-node=$GPUS_PER_NODE
    --master-addr=$MASTER_ADDR --master-port=$MASTER_PORT`` and ``torch.distributed``'s
    ``env://`` expect on each node of a multi-node job. One process per GPU: ``WORLD_SIZE``
    is the number of processes (nodes × GPUs per node, every node of a gang has the same
    count), ``LOCAL_WORLD_SIZE`` = ``GPUS_PER_NODE`` the processes of this node (at least 1:
    a CPU-only gang runs one process per node). ``MASTER_ADDR`` is the first node's address,
    ``MASTER_PORT`` ``29500 + id mod 1000``; the job's own ``MASTER_PORT``/``MASTER_ADDR``
    win."""
    nnodes = len(spec.nodes)
    per_node = max(len(spec.gpus), 1)
    port = spec.master_port or MASTER_PORT_BASE + spec.id % 1000
    return {
        "MASTER_ADDR": job_env.get("MASTER_ADDR") or spec.master_addr or spec.nodes[0],
        "MASTER_PORT": job_env.get("MASTER_PORT") or str(port),
        "NNODES": str(nnodes),
        "NODE_RANK": str(spec.node_rank),
        "GPUS_PER_NODE": str(per_node),
        "LOCAL_WORLD_SIZE": str(per_node),
        "WORLD_SIZE": str(nnodes * per_node),
    }


class Launcher:
    """Runs the jobs of one agent; ``state_dir`` holds one state file per live job."""

    def __init__(self, state_dir: Path, agent_user: str, *, allow_root_jobs: bool = False) -> None:
        self.state_dir = Path(state_dir)
        self.agent_user = agent_user
        self.allow_root_jobs = allow_root_jobs
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._children: dict[Key, subprocess.Popen[bytes]] = {}
        self._records: dict[Key, JobProcess] = {}
        self._adopted: set[Key] = set()

    # -- queries -----------------------------------------------------------------------------

    def record(self, key: Key) -> JobProcess | None:
        return self._records.get(key)

    def sessions(self) -> dict[int, Key]:
        """Process group (= session) id → job, for telling which GPU process is whose."""
        return {record.pgid: key for key, record in self._records.items()}

    def running(self) -> bool:
        """Whether any job still has to be reaped (the shell then checks exits often)."""
        return bool(self._children) or bool(self._adopted)

    # -- launching ---------------------------------------------------------------------------

    def _account(self, spec: JobSpec) -> tuple[Account | None, bool]:
        """The job account and whether to switch to it (only as root). Refuses uid 0 unless
        the agent allows root jobs: a job is never a way to become root."""
        if not spec.user:
            raise LaunchError("the job names no user")
        name = account_name(spec)
        root = os.geteuid() == 0
        if not root and name != self.agent_user:
            raise LaunchError(
                f"the agent runs as '{self.agent_user}' and can only start "
                f"{self.agent_user}'s jobs; run `procplan agent` as root to start jobs of "
                "other users"
            )
        try:
            account = Account.of(pwd.getpwnam(name))
        except KeyError:
            if root:
                raise LaunchError(f"unknown user '{name}' on this node") from None
            return None, False  # our own user without a passwd entry (containers)
        if account.uid == 0 and not self.allow_root_jobs:
            raise LaunchError(ROOT_REFUSED)
        return account, root

    def _open_logs(
        self,
        account: Account | None,
        switch: bool,
        workdir: str,
        paths: tuple[str, str],
        truncate: bool,
    ) -> tuple[int, int]:
        """``(stdout fd, stderr fd)``, the same fd when both go to one file. As root they
        are opened, after checking the working directory, as the job's account. A job's
        first run starts its files empty (``truncate``); a requeued run appends."""
        stdout, stderr = paths
        files = (
            [("stdout", stdout)] if stderr == stdout else [("stdout", stdout), ("stderr", stderr)]
        )
        if switch and account is not None:
            fds = open_logs_as(account, workdir, files, truncate=truncate)
            return fds[0], fds[-1]
        if not os.path.isdir(workdir):
            raise LaunchError(f"working directory {workdir} does not exist on this node")
        out_fd = open_log(stdout, "stdout", truncate=truncate)
        try:
            return out_fd, (
                out_fd if stderr == stdout else open_log(stderr, "stderr", truncate=truncate)
            )
        except BaseException:
            os.close(out_fd)
            raise

    def launch(self, spec: JobSpec, extra_env: Mapping[str, str] | None = None) -> int:
        """Start the job (``extra_env`` on top of its environment); returns its pid.
        ``LaunchError`` says why when it cannot start."""
        if spec.key in self._records:
            raise LaunchError(f"job {spec.id} run {spec.run} is already running here")
        if not spec.command:
            raise LaunchError("the job has no command")
        account, switch = self._account(spec)
        home = account.home if account is not None else os.environ.get("HOME", "/")
        workdir = spec.workdir or home
        env = job_environment(spec, home)
        env.update(extra_env or {})
        stdout, stderr = log_paths(spec, workdir)
        out_fd, err_fd = self._open_logs(
            account, switch, workdir, (stdout, stderr), truncate=spec.run == 0
        )
        started_at = time.time()
        try:
            starts = _mark_run(spec, out_fd, err_fd, started_at)
            proc = self._popen(spec, workdir, env, out_fd, err_fd, account if switch else None)
        finally:
            os.close(out_fd)
            if err_fd != out_fd:
                os.close(err_fd)
        try:
            create_time = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            create_time = 0.0  # it already ended: it will not be adopted
        record = JobProcess(
            spec.id, spec.run, proc.pid, proc.pid, create_time, started_at, spec.user,
            stdout, None if stderr == stdout else stderr, rank=spec.node_rank,
            stdout_start=starts[0], stderr_start=starts[1],
        )  # fmt: skip
        self._children[spec.key] = proc
        self._records[spec.key] = record
        self._write_state(record)
        return proc.pid

    @staticmethod
    def _popen(
        spec: JobSpec,
        workdir: str,
        env: dict[str, str],
        out_fd: int,
        err_fd: int,
        account: Account | None,
    ) -> subprocess.Popen[bytes]:
        identity: dict[str, Any] = {}
        if account is not None:
            identity = {
                "user": account.uid,
                "group": account.gid,
                "extra_groups": list(account.groups),
            }
        try:
            return subprocess.Popen(
                list(spec.command),
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out_fd,
                stderr=err_fd,
                start_new_session=True,
                close_fds=True,
                **identity,
            )
        except OSError as exc:
            raise LaunchError(f"cannot run {spec.command[0]}: {exc.strerror or exc}") from exc

    # -- signals and exits -----------------------------------------------------------------

    def signal(self, key: Key, signum: int) -> bool:
        """Send ``signum`` to the job's process group; False when it is already gone."""
        record = self._records.get(key)
        if record is None or not self._alive(key, record):
            return False
        try:
            os.killpg(record.pgid, signum)
        except ProcessLookupError:
            return False
        return True

    def _alive(self, key: Key, record: JobProcess) -> bool:
        child = self._children.get(key)
        if child is not None:
            return child.returncode is None
        return key in self._adopted and _same_process(record.pid, record.create_time)

    def poll_exits(self) -> list[tuple[Key, int | None, int | None]]:
        """Jobs that ended since the last call: ``(key, exit code, signal)`` (both ``None``
        for an adopted job: not our child, its status is unknown). Never blocks."""
        ended: list[tuple[Key, int | None, int | None]] = []
        for key, child in list(self._children.items()):
            code = child.poll()
            if code is None:
                continue
            del self._children[key]
            ended.append((key, code, None) if code >= 0 else (key, None, -code))
        for key in list(self._adopted):
            record = self._records[key]
            if not _same_process(record.pid, record.create_time):
                self._adopted.discard(key)
                ended.append((key, None, None))
        for key, _code, _signal in ended:
            # What the command left behind in its session dies with it (like Slurm).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._records[key].pgid, signal.SIGKILL)
        return ended

    def stop_all(self, grace_s: float = STOP_GRACE_S) -> list[Key]:
        """End every job this launcher tracks: SIGTERM to its process group, SIGKILL to what is
        left after ``grace_s``; returns the jobs that were signalled. Only for agents whose jobs
        end with them (``--demo``): a real agent's stop leaves its jobs running."""
        live = [key for key, record in self._records.items() if self._alive(key, record)]
        for key in live:
            self.signal(key, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(
            self._alive(key, self._records[key]) for key in live
        ):
            time.sleep(0.02)
            for child in self._children.values():
                child.poll()
        for key in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._records[key].pgid, signal.SIGKILL)
        for child in self._children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1.0)
        for job_id, run in live:
            log.info("job %s run %s: stopped with the agent", job_id, run)
        return live

    def forget(self, key: Key) -> None:
        """The job's exit is reported: drop its state file and record."""
        self._records.pop(key, None)
        self._adopted.discard(key)
        child = self._children.pop(key, None)
        if child is not None and child.poll() is None:
            self._children[key] = child  # still running: keep reaping it
        with contextlib.suppress(FileNotFoundError):
            self._state_file(key).unlink()

    # -- the state directory -----------------------------------------------------------------

    def _state_file(self, key: Key) -> Path:
        return self.state_dir / f"job-{key[0]}-{key[1]}.json"

    def _write_state(self, record: JobProcess) -> None:
        path = self._state_file(record.key)
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(asdict(record)))
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write %s (the job is not adopted after a restart): %s", path, exc)

    def adoptable(self) -> list[JobProcess]:
        """Jobs of a previous agent run that are still alive; they are tracked from now on.
        State files of processes that are gone (or unreadable) are deleted."""
        found = []
        for path in sorted(self.state_dir.glob("job-*-*.json")):
            try:
                record = JobProcess(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("ignoring unreadable state file %s: %s", path, exc)
                path.unlink(missing_ok=True)
                continue
            if record.key in self._records:
                continue
            if not _same_process(record.pid, record.create_time):
                path.unlink(missing_ok=True)
                continue
            self._records[record.key] = record
            self._adopted.add(record.key)
            found.append(record)
        return found


def _mark_run(spec: JobSpec, out_fd: int, err_fd: int, at: float) -> tuple[int, int]:
    """Where this run's output begins in each file (its size now: the server stores each
    run apart, from there). A requeued run (``run`` > 0) first appends the separator line,
    which is shipped as the start of the run's log."""
    starts = (os.fstat(out_fd).st_size, os.fstat(err_fd).st_size)
    if spec.run > 0:
        line = run_separator(spec, at)
        for fd in {out_fd, err_fd}:
            try:
                os.write(fd, line)
            except OSError as exc:  # a full disk must not keep the job from running
                log.warning("job %s run %s: cannot write the run separator: %s",
                            spec.id, spec.run, exc)  # fmt: skip
    return starts


def _same_process(pid: int, create_time: float) -> bool:
    """Whether ``pid`` is still the process that had ``create_time`` (not a reused pid,
    not a zombie)."""
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > _CREATE_TIME_SLACK:
            return False
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
