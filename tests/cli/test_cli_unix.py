"""``--url unix:///path.sock``: the CLI over the server's Unix socket, where the kernel
(``SO_PEERCRED``) says who the caller is. The caller here is the user running the tests, the
server's own user, hence an admin, with no token and no sign-in."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from procplan.cli.main import app
from procplan.client import ProcPlanClient
from procplan.client.auth import CredentialStore
from procplan.core.identity import Role


def _cli(url: str, *args: str, input: str | None = None):
    return CliRunner().invoke(app, [*args, "--url", url], input=input)


def _login_name() -> str:
    return getpass.getuser()


def test_whoami_over_the_socket_is_the_kernel_s_answer(unix_live):
    result = _cli(unix_live.url, "whoami", "--json")
    assert result.exit_code == 0, result.output
    me = json.loads(result.stdout)
    assert (me["user"], me["via"], me["role"]) == (_login_name(), "peer", "admin")
    assert me["unix_user"] == _login_name()


def test_book_and_list_mine_over_the_socket(unix_live):
    booked = _cli(unix_live.url, "book", "node-a", "--duration", "1h")
    assert booked.exit_code == 0, booked.output
    listed = _cli(unix_live.url, "bookings")
    assert listed.exit_code == 0, listed.output
    assert "node-a-gpu0" in listed.stdout


def test_run_over_the_socket(unix_live):
    """``procplan run`` waits for GPUs, runs the command with them, releases them. It runs as
    a process of its own: the server ties the job to its PID, and refuses its own."""
    script = "import os; print('gpus=' + os.environ['CUDA_VISIBLE_DEVICES'])"
    command = [sys.executable, "-m", "procplan.cli.main", "run", "--url", unix_live.url]
    done = subprocess.run(
        [*command, "-n", "1", "--", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("gpus=")
    with ProcPlanClient(unix_live.url) as client:
        (job,) = client.jobs.list(state="completed").jobs
    assert job.user == _login_name()


def test_login_saves_under_the_socket_url(unix_live):
    unix_live.composed.accounts.add_user("alice", Role.USER, None, "correct horse")
    result = _cli(
        unix_live.url, "login", "--user", "alice", "--password-stdin", input="correct horse\n"
    )
    assert result.exit_code == 0, result.output
    path = unix_live.url.removeprefix("unix://")
    saved = CredentialStore().get(f"unix://{os.path.abspath(path)}")
    assert saved is not None and saved.user == "alice"
    me = json.loads(_cli(unix_live.url, "whoami", "--json").stdout)
    assert (me["user"], me["via"]) == ("alice", "session")  # the session wins over the peer
