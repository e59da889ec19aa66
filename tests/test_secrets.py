"""Secrets stay out of process environments and logs: the workers' handoff file, the variables
the server forgets after reading them, ``compose()`` leaving the environment alone, and the
database URL as logs show it."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from procplan.config import Settings
from procplan.handoff import (
    HANDOFF_ENV,
    forget_secret_environment,
    read_handoff,
    worker_handoff,
)
from procplan.server import compose, worker_payload
from procplan.store.engine import display_url

TOKEN = "tok-3f9a1c"
PG_URL = "postgresql+psycopg://procplan:pw-77c2e@db.example:5432/procplan"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_the_handoff_file_is_private_and_gone_afterwards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HANDOFF_ENV, raising=False)
    with worker_handoff('{"secret": 1}') as path:
        assert os.environ[HANDOFF_ENV] == str(path)
        assert (mode(path), mode(path.parent)) == (0o600, 0o700)
        assert path.parent.name.startswith("procplan-workers-")
        assert read_handoff() == '{"secret": 1}'
    assert HANDOFF_ENV not in os.environ
    assert not path.parent.exists()


def test_each_handoff_gets_a_new_directory() -> None:
    with worker_handoff("a") as first, worker_handoff("b") as second:
        assert first.parent != second.parent


def test_the_handoff_is_removed_when_the_server_fails() -> None:
    with pytest.raises(RuntimeError), worker_handoff("x") as path:
        raise RuntimeError("uvicorn died")
    assert not path.parent.exists()


def test_a_worker_refuses_a_handoff_others_can_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = tmp_path / "settings.json"
    planted.write_text("{}")
    planted.chmod(0o644)
    monkeypatch.setenv(HANDOFF_ENV, str(planted))
    with pytest.raises(RuntimeError, match="not a private file"):
        read_handoff()
    link = tmp_path / "link.json"
    link.symlink_to(planted)
    monkeypatch.setenv(HANDOFF_ENV, str(link))
    with pytest.raises(OSError):
        read_handoff()


def test_the_payload_carries_the_settings_and_the_local_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(db_url=PG_URL, agent_token=TOKEN, workers=3, demo=True)
    with worker_handoff(worker_payload(settings, "local-abc")) as path:
        monkeypatch.setenv(HANDOFF_ENV, str(path))
        payload = json.loads(read_handoff())
    assert Settings.model_validate(payload["settings"]) == settings
    assert payload["local_token"] == "local-abc"


def test_secret_variables_are_forgotten_in_any_case() -> None:
    environ = {
        "PROCPLAN_AGENT_TOKEN": TOKEN,
        "procplan_db_url": PG_URL,
        "PROCPLAN_INTERNAL_LOCAL_TOKEN": "x",
        "PROCPLAN_PORT": "9000",
        "PROCPLAN_SETTINGS": "/etc/procplan.toml",
        "PATH": "/usr/bin",
    }
    removed = forget_secret_environment(environ)
    assert sorted(removed) == [
        "PROCPLAN_AGENT_TOKEN",
        "PROCPLAN_INTERNAL_LOCAL_TOKEN",
        "procplan_db_url",
    ]
    assert environ == {
        "PROCPLAN_PORT": "9000",
        "PROCPLAN_SETTINGS": "/etc/procplan.toml",
        "PATH": "/usr/bin",
    }


def test_compose_puts_nothing_in_the_environment(sqlite_url: str) -> None:
    before = dict(os.environ)
    first = compose(Settings(db_url=sqlite_url, agent_token=TOKEN, local_agent="off"))
    second = compose(
        Settings(db_url=sqlite_url, local_agent="off"),
        prepare_database=False,
        local_token=first.local_token,
    )
    try:
        assert dict(os.environ) == before
        assert second.local_token == first.local_token  # a worker accepts its parent's agents
        assert first.local_token not in os.environ.values()
    finally:
        first.store.dispose()
        second.store.dispose()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (PG_URL, "postgresql+psycopg://procplan:***@db.example:5432/procplan"),
        (
            "postgresql+psycopg://procplan@h/db?password=pw-1&sslmode=require&sslpassword=pw-2",
            "postgresql+psycopg://procplan@h/db?password=redacted&sslmode=require&sslpassword=redacted",
        ),
        ("sqlite:////var/lib/procplan/procplan.db", "sqlite:////var/lib/procplan/procplan.db"),
    ],
)
def test_logs_show_database_urls_without_passwords(url: str, shown: str) -> None:
    assert display_url(make_url(url)) == shown
