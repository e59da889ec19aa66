"""``procplan login/logout/whoami/user/token/audit`` against the real app on loopback TCP.

The server here has no peer identity, so a command is whoever its credential says, or nobody:
exactly what a user on another machine sees.
"""

from __future__ import annotations

import json
import stat

import pytest
from typer.testing import CliRunner

from procplan.cli.main import app
from procplan.client.auth import SESSION, TOKEN, TOKEN_ENV, CredentialStore
from procplan.core.identity import Role

PASSWORD = "correct horse battery"


@pytest.fixture
def cli(live):
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None):
        return runner.invoke(app, list(args), env={**live.env(), **(env or {})}, input=input)

    return invoke


@pytest.fixture
def alice(live):
    live.composed.accounts.add_user("alice", Role.USER, None, PASSWORD)
    return "alice"


def _saved(live):
    return CredentialStore().get(live.url)


# ---- login, whoami, logout -----------------------------------------------------------------


def test_login_saves_a_session_that_later_commands_use(cli, live, alice, private_config):
    result = cli("login", "--user", "alice", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Signed in to {live.url} as alice (user); saved in ")
    saved = _saved(live)
    assert saved is not None and (saved.kind, saved.user) == (SESSION, "alice")
    assert saved.secret not in result.output
    assert stat.S_IMODE((private_config / "credentials.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(private_config.stat().st_mode) == 0o700

    whoami = cli("whoami")
    assert whoami.exit_code == 0, whoami.output
    lines = whoami.stdout.splitlines()
    assert "User: alice" in lines and "Role: user" in lines
    assert "Via: a sign-in session" in lines
    assert saved.secret not in whoami.output

    booked = cli("book", "node-a", "--duration", "1h")  # a write, proven by the session
    assert booked.exit_code == 0, booked.output
    assert json.loads(cli("whoami", "--json").stdout)["user"] == "alice"

    out = cli("logout")
    assert (out.exit_code, out.stdout) == (0, f"Signed out of {live.url}.\n")
    assert _saved(live) is None
    assert live.composed.accounts.verify(saved.secret) is None  # revoked on the server
    assert cli("whoami").exit_code == 1


def test_login_prompts_with_getpass(cli, live, alice, monkeypatch):
    prompts = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return PASSWORD

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    result = cli("login", "-u", "alice")
    assert result.exit_code == 0, result.output
    assert prompts == [f"Password for alice at {live.url}: "]
    assert _saved(live).user == "alice"


def test_wrong_password_saves_nothing(cli, live, alice):
    result = cli("login", "--user", "alice", "--password-stdin", input="wrong password\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: wrong user or password")
    assert _saved(live) is None


def test_login_with_a_token_from_stdin(cli, live):
    token = live.token("bob")
    result = cli("login", "--token-stdin", input=token + "\n")
    assert result.exit_code == 0, result.output
    assert token not in result.output
    saved = _saved(live)
    assert (saved.kind, saved.secret, saved.user) == (TOKEN, token, "bob")
    assert "User: bob" in cli("whoami").stdout
    out = cli("logout")
    assert out.exit_code == 0 and "stays valid" in out.stdout
    assert live.composed.accounts.verify(token) is not None  # an API token is not revoked


def test_login_refuses_a_bad_token(cli, live):
    result = cli("login", "--token-stdin", input="pp_not-a-real-token\n")
    assert result.exit_code == 1
    assert "the token is unknown" in result.stderr
    assert _saved(live) is None
    assert cli("login", "--token-stdin", "--user", "bob", input="x\n").exit_code == 2


def test_env_token_wins_over_the_saved_sign_in(cli, live, alice):
    cli("login", "--user", "alice", "--password-stdin", input=PASSWORD + "\n")
    result = cli("whoami", env={TOKEN_ENV: live.token("bob")})
    assert result.exit_code == 0, result.output
    assert "User: bob" in result.stdout
    assert f"Credential: ${TOKEN_ENV}" in result.stdout


def test_whoami_without_credentials_is_nobody(cli, live):
    result = cli("whoami")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"Not signed in to {live.url}")


def test_a_revoked_env_token_says_where_it_came_from(cli, live):
    env = {TOKEN_ENV: live.token("bob")}
    listed = json.loads(cli("token", "list", "--json", env=env).stdout)
    (mine,) = listed
    assert cli("token", "revoke", str(mine["id"]), env=env).exit_code == 0
    result = cli("whoami", env=env)
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: the token is unknown, revoked or expired (the token in ${TOKEN_ENV})\n"
    )


def test_logout_with_nothing_saved(cli, live):
    result = cli("logout")
    assert (result.exit_code, result.stdout) == (0, f"Nothing saved for {live.url}.\n")


# ---- users ---------------------------------------------------------------------------------


def test_user_commands(cli, live):
    admin = live.env("root-admin", Role.ADMIN)
    added = cli("user", "add", "carol", "--unix-user", "carol7", "--password-stdin",
                env=admin, input=PASSWORD + "\n")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert added.stdout == "Added user carol (user)\n"
    assert cli("user", "add", "dave", "--admin", env=admin).stdout == "Added user dave (admin)\n"

    listed = cli("user", "list", env=admin)
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if "carol" in line)
    assert "carol7" in row and "yes" in row and "active" in row
    names = {u["name"] for u in json.loads(cli("user", "list", "--json", env=admin).stdout)}
    assert {"carol", "dave", "root-admin"} <= names

    changed = cli("user", "set", "carol", "--role", "admin", "--no-unix-user", "--disable",
                  env=admin)  # fmt: skip
    assert changed.exit_code == 0, changed.output
    for line in ("User: carol", "Role: admin", "Unix user: (none)", "State: disabled"):
        assert line in changed.stdout.splitlines()
    assert cli("user", "set", "carol", env=admin).exit_code == 2  # nothing to change
    shown = json.loads(cli("user", "show", "carol", "--json", env=admin).stdout)
    assert (shown["role"], shown["unix_user"], shown["disabled"]) == ("admin", None, True)

    link = cli("user", "login-link", "dave", env=admin)
    assert link.exit_code == 0, link.output
    assert link.stdout.count("\n") == 1 and "/login.html#link=pp_" in link.stdout

    removed = cli("user", "remove", "dave", env=admin)
    assert removed.exit_code == 0 and removed.stdout.startswith("Removed user dave: disabled")
    assert live.composed.accounts.account("dave").disabled


def test_users_change_only_their_own_password(cli, live, alice):
    env = live.env("alice")
    assert cli("user", "list", env=env).stderr == "error: this needs an admin\n"
    own = cli("user", "set", "alice", "--password-stdin", env=env, input="a new password\n")
    assert own.exit_code == 0, own.output
    assert live.composed.accounts.check_password("alice", "a new password") is not None
    other = cli("user", "set", "alice", "--role", "admin", env=env)
    assert other.exit_code == 1 and "needs an admin" in other.stderr


def test_writes_without_credentials_are_refused(cli):
    result = cli("user", "add", "eve")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: sign in:")


# ---- tokens --------------------------------------------------------------------------------


def test_token_create_prints_only_the_token_and_it_works(cli, live):
    env = live.env("bob")
    made = cli("token", "create", "--name", "ci", "--expires", "30d", env=env)
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert made.stdout == secret + "\n" and secret.startswith("pp_")
    assert "Created token" in made.stderr and "for bob" in made.stderr
    assert "User: bob" in cli("whoami", env={TOKEN_ENV: secret}).stdout

    listed = cli("token", "list", env=env)
    assert listed.exit_code == 0, listed.output
    assert secret not in listed.output and "ci" in listed.stdout
    raw = cli("token", "list", "--json", env=env)
    assert secret not in raw.output
    tokens = json.loads(raw.stdout)
    ci = next(t for t in tokens if t["name"] == "ci")
    assert ci["expires_at"] is not None and "token" not in ci

    revoked = cli("token", "revoke", str(ci["id"]), env=env)
    assert (revoked.exit_code, revoked.stdout) == (0, f"Revoked token {ci['id']} of bob\n")
    assert cli("whoami", env={TOKEN_ENV: secret}).exit_code == 1


def test_token_for_another_user_needs_an_admin(cli, live):
    refused = cli("token", "create", "--user", "carol", env=live.env("bob"))
    assert refused.exit_code == 1 and refused.stdout == ""
    admin = live.env("root-admin", Role.ADMIN)
    live.composed.accounts.add_user("carol", Role.USER, None, None)
    made = cli("token", "create", "--user", "carol", "--expires", "2099-01-01T00:00", env=admin)
    assert made.exit_code == 0, made.output
    assert "User: carol" in cli("whoami", env={TOKEN_ENV: made.stdout.strip()}).stdout
    listed = json.loads(cli("token", "list", "--user", "carol", "--json", env=admin).stdout)
    assert [t["expires_at"] for t in listed] == ["2099-01-01T00:00:00+00:00"]


@pytest.mark.parametrize("expires", ["soon", "now", "2020-13-01"])
def test_bad_expiry_is_a_usage_error(cli, live, expires):
    result = cli("token", "create", "--expires", expires, env=live.env("bob"))
    assert result.exit_code == 2 and result.stdout == ""


# ---- acting for others, and the audit log --------------------------------------------------


def test_acting_for_another_user_is_for_admins_and_audited(cli, live, alice):
    admin = live.env("root-admin", Role.ADMIN)
    booked = cli("book", "node-a", "--duration", "1h", "--as", "alice", env=admin)
    assert booked.exit_code == 0, booked.output
    mine = json.loads(cli("whoami", "--json", "--as", "alice", env=admin).stdout)
    assert (mine["user"], mine["acting_as_admin_for"], mine["actor"]) == (
        "alice", "alice", "root-admin",
    )  # fmt: skip
    listed = cli("bookings", env=live.env("alice"))
    assert "node-a" in listed.stdout  # alice's booking, made for her

    refused = cli("book", "node-a", "--duration", "1h", "--as", "alice", env=live.env("bob"))
    assert refused.exit_code == 1
    assert "only admins act for other users" in refused.stderr

    log = cli("audit", env=admin)
    assert log.exit_code == 0, log.output
    row = next(line for line in log.stdout.splitlines() if "root-admin" in line)
    assert "as admin" in row and "alice" in row
    entries = json.loads(cli("audit", "--json", "--user", "alice", env=admin).stdout)
    assert any(e["as_admin"] and e["actor"] == "root-admin" for e in entries)
    own = cli("audit", env=live.env("alice"))
    assert own.exit_code == 0 and "root-admin" in own.stdout  # it was done to her booking


def test_audit_empty(cli, live):
    assert cli("audit", env=live.env("bob")).stdout == "No audit entries.\n"


def test_tenant_manager_flag(cli, live):
    admin = live.env("root-admin", Role.ADMIN)
    assert cli("tenant", "create", "vision", env=admin).exit_code == 0
    made = cli("tenant", "set", "vision", "--add-user", "carol", "--manager", env=admin)
    assert made.exit_code == 0, made.output
    assert live.composed.accounts.account("carol").manages == ("vision",)
    carol = live.env("carol")
    assert cli("tenant", "set", "vision", "--max-gpus", "4", env=carol).exit_code == 0
    again = cli("tenant", "set", "vision", "--add-user", "carol", "--no-manager", env=admin)
    assert again.exit_code == 0, again.output
    assert live.composed.accounts.account("carol").manages == ()
    assert cli("tenant", "set", "vision", "--manager", env=admin).exit_code == 2


def test_signing_in_again_revokes_the_replaced_session(cli, live, alice):
    cli("login", "--user", "alice", "--password-stdin", input=PASSWORD + "\n")
    first = _saved(live).secret
    again = cli("login", "--user", "alice", "--password-stdin", input=PASSWORD + "\n")
    assert again.exit_code == 0, again.output
    assert _saved(live).secret != first
    assert live.composed.accounts.verify(first) is None


def test_login_never_acts_for_anyone(cli, live):
    """``$PROCPLAN_AS`` is for commands, not for saving who we are."""
    token = live.token("root-admin", Role.ADMIN)
    result = cli("login", "--token-stdin", input=token + "\n", env={"PROCPLAN_AS": "bob"})
    assert result.exit_code == 0, result.output
    assert _saved(live).user == "root-admin"


def test_a_stale_saved_session_is_pointed_out(cli, live):
    CredentialStore().save(live.url, "pp_long-gone-session", SESSION, "alice")
    result = cli("whoami")
    assert result.exit_code == 1  # a 401 that says so: never the Unix user instead
    assert "unknown, revoked or expired" in result.stderr and "procplan logout" in result.stderr
    assert "pp_long-gone-session" not in result.output
