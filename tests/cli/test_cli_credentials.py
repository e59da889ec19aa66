"""Where the client's credential comes from and how it is kept (``procplan.client.auth``)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from procplan.cli.jobs import parse_env
from procplan.client import USER_HEADER, ProcPlanClient
from procplan.client.auth import (
    SESSION,
    TOKEN,
    TOKEN_ENV,
    Credential,
    CredentialStore,
    credentials_path,
    resolve_act_as,
    resolve_credential,
    server_key,
    unix_socket_path,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_credentials_live_in_the_user_config_dir(private_config):
    assert credentials_path() == private_config / "credentials.json"


def test_saved_file_is_0600_in_a_0700_directory_and_nothing_else_is_left(private_config):
    store = CredentialStore()
    previous = os.umask(0o022)  # the usual umask: a plain open() would make 0644
    try:
        store.save("http://gpu:8080", "pp_secret", SESSION, "alice")
    finally:
        os.umask(previous)
    assert _mode(private_config) == 0o700
    assert _mode(store.path) == 0o600
    store.save("http://other:8080", "pp_other", TOKEN, "bob")  # rewritten by a rename
    assert _mode(store.path) == 0o600
    assert sorted(p.name for p in private_config.iterdir()) == ["credentials.json"]
    saved = json.loads(store.path.read_text())["servers"]
    assert saved["http://gpu:8080"]["secret"] == "pp_secret"
    assert saved["http://other:8080"]["kind"] == TOKEN


def test_a_loose_existing_directory_is_tightened(private_config):
    private_config.mkdir(mode=0o755)
    os.chmod(private_config, 0o755)
    CredentialStore().save("http://gpu:8080", "pp_x", TOKEN, "alice")
    assert _mode(private_config) == 0o700


def test_a_file_planted_at_the_temporary_name_is_never_written_through(private_config):
    """``O_EXCL`` + rename: a symlink at the old file's place is replaced, not followed."""
    private_config.mkdir(mode=0o700)
    target = private_config.parent / "elsewhere"
    target.write_text("untouched")
    (private_config / "credentials.json").symlink_to(target)
    CredentialStore().save("http://gpu:8080", "pp_x", TOKEN, "alice")
    assert target.read_text() == "untouched"
    assert not (private_config / "credentials.json").is_symlink()


def test_same_server_spelled_differently_finds_the_same_entry():
    assert server_key("HTTP://GPU:80/") == "http://gpu"
    assert server_key("https://gpu:443") == server_key("https://gpu/")
    assert server_key("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert server_key("http://[::1]:8080") == "http://[::1]:8080"
    assert server_key("unix:///run/procplan.sock") == "unix:///run/procplan.sock"
    assert server_key("http://gpu:8080") != server_key("http://gpu:8081")


def test_unix_urls():
    assert unix_socket_path("unix:///run/procplan.sock") == "/run/procplan.sock"
    assert unix_socket_path("UNIX:/run/procplan.sock") == "/run/procplan.sock"
    assert unix_socket_path("unix:") is None
    assert unix_socket_path("http://gpu:8080") is None


def test_forget_and_damaged_files(private_config):
    store = CredentialStore()
    assert store.get("http://gpu:8080") is None
    assert store.forget("http://gpu:8080") is None
    store.save("http://gpu:8080", "pp_x", SESSION, "alice")
    forgotten = store.forget("http://GPU:8080/")
    assert forgotten is not None and (forgotten.secret, forgotten.kind) == ("pp_x", SESSION)
    assert store.get("http://gpu:8080") is None
    store.path.write_text("{not json")
    assert store.get("http://gpu:8080") is None  # a damaged file is no credential, no crash
    store.save("http://gpu:8080", "pp_y", TOKEN, "alice")
    assert store.get("http://gpu:8080") == Credential("pp_y", TOKEN, str(store.path), "alice")


def test_precedence_env_then_saved_then_nothing(private_config, monkeypatch):
    store = CredentialStore()
    assert resolve_credential("http://gpu:8080") is None
    store.save("http://gpu:8080", "pp_saved", SESSION, "alice")
    assert resolve_credential("http://gpu:8080").secret == "pp_saved"
    assert resolve_credential("http://other:8080") is None  # saved per server
    monkeypatch.setenv(TOKEN_ENV, " pp_env ")
    found = resolve_credential("http://gpu:8080")
    assert (found.secret, found.kind, found.source) == ("pp_env", TOKEN, TOKEN_ENV)


def test_a_credential_never_shows_its_secret_in_repr():
    assert "pp_secret" not in repr(Credential("pp_secret", SESSION, "file", "alice"))


def test_act_as_only_when_asked(monkeypatch):
    assert resolve_act_as(None) is None
    monkeypatch.setenv("PROCPLAN_AS", "bob")
    assert resolve_act_as(None) == "bob"
    assert resolve_act_as("carol") == "carol"


def test_headers_by_kind_and_source(fake_server, private_config, monkeypatch):
    """A saved session and an API token both go as a bearer token, and no ``X-ProcPlan-User``
    unless acting for someone."""
    fake_server.add("GET", "/api/v1/me", 200, {"user": "alice"})
    store = CredentialStore()
    store.save(fake_server.url, "pp_session", SESSION, "alice")
    with ProcPlanClient(fake_server.url) as client:
        client.accounts.me()
    with ProcPlanClient(fake_server.url, act_as="bob") as client:
        client.accounts.me()
    monkeypatch.setenv(TOKEN_ENV, "pp_env")
    with ProcPlanClient(fake_server.url) as client:
        client.accounts.me()
    with ProcPlanClient(fake_server.url, discover=False) as client:
        client.accounts.me()
    saved, acting, env, bare = (r.headers for r in fake_server.requests)
    assert saved["Authorization"] == "Bearer pp_session" and "Cookie" not in saved
    assert USER_HEADER not in saved and acting[USER_HEADER] == "bob"
    assert env["Authorization"] == "Bearer pp_env" and "Cookie" not in env
    assert "Authorization" not in bare and "Cookie" not in bare


def test_export_env_never_sends_the_token():
    base = {"PATH": "/bin", TOKEN_ENV: "pp_secret"}
    assert parse_env([], True, base) == {"PATH": "/bin"}
    assert parse_env([f"{TOKEN_ENV}=pp_given"], True, base)[TOKEN_ENV] == "pp_given"


@pytest.mark.parametrize("url", ["unix:///nonexistent/procplan.sock"])
def test_unreachable_unix_socket_names_the_socket(url):
    from procplan.client import ServerUnreachable

    with ProcPlanClient(url) as client, pytest.raises(ServerUnreachable) as info:
        client.health()
    assert info.value.url == url
