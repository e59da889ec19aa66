"""One typed Settings object for the server: defaults < TOML file < ``PROCPLAN_*`` env < flags.

The TOML file is named by ``--settings FILE`` or ``PROCPLAN_SETTINGS``; every field can also
come from the environment (``PROCPLAN_PORT=9000``) or from keyword arguments (CLI flags).
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

APP_NAME = "procplan"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# A root path: "/seg" or "/seg/seg", each segment URL-safe without quoting (RFC 3986
# unreserved characters), so that it needs no escaping in a URL, a cookie path or HTML.
_ROOT_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")
# First segments the server itself serves: a root path starting with one would make
# "is this request under the prefix?" ambiguous (``api.prefix``).
RESERVED_ROOTS = frozenset(
    {"api", "docs", "redoc", "openapi.json", "static-docs", "acquire", "status", "jobs",
     "health", "metrics"}
)  # fmt: skip


def default_data_dir() -> Path:
    """Where the embedded SQLite database lives when no URL or path is given."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


class Settings(BaseSettings):
    """Everything the server needs to start; see docs/architecture.md for the meaning."""

    model_config = SettingsConfigDict(env_prefix="PROCPLAN_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    db_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the user data dir"
    )
    database: Path | None = Field(default=None, description="SQLite file path (ProcPlan flag)")
    config: Path | None = Field(default=None, description="ProcPlan JSON topology file")
    web_root: Path | None = None
    demo: bool = False
    workers: int = Field(default=1, ge=1, le=64, description="server processes")
    settings_file: Path | None = Field(default=None, exclude=True)
    # ---- behind a reverse proxy, and HTTPS (issue #16, ADR 0019) ----
    root_path: str = Field(
        default="",
        description="the path prefix a reverse proxy serves ProcPlan under, e.g. '/procplan' "
        "for https://host/procplan/ (the proxy may strip it or pass it on)",
    )
    ssl_certfile: Path | None = Field(
        default=None, description="serve HTTPS with this certificate (PEM; chain after the leaf)"
    )
    ssl_keyfile: Path | None = Field(default=None, description="the certificate's private key")

    max_booking_days: int = Field(default=31, ge=1)
    max_past_minutes: int = Field(default=60, ge=0)
    max_label_length: int = Field(default=64, ge=1)
    max_window_days: int = Field(default=400, ge=1)
    # ---- what one request may send and one answer may weigh (413 / 400 past these) ----
    max_body_bytes: int = Field(default=1 << 20, ge=1024, le=1 << 30)
    max_log_chunk_bytes: int = Field(
        default=4 << 20, ge=1024, le=1 << 30, description="an agent's job-log upload"
    )
    max_answer_bytes: int = Field(
        default=24 << 20, ge=1 << 16, le=1 << 32, description="the largest view one request gets"
    )
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "FULL"
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0)
    log_level: str = "info"

    # ---- the job queue (issue #3); see core.jobs.Policy for what each knob does ----
    local_node: str | None = Field(
        default=None, description="node id of the server's own host (default: host name)"
    )
    lease_ttl_s: int = Field(default=30, ge=3, le=3600)
    pid_watch: Literal["pidfd", "poll"] = Field(
        default="pidfd",
        description="how the exit of a client watched by PID (srun's /acquire, `procplan run` "
        "here) is noticed: 'pidfd' at once (Linux >= 5.3; falls back to polling where "
        "unavailable), 'poll' once a second (ADR 0016)",
    )
    cycle_tick_s: float = Field(default=1.0, gt=0, le=60)
    weight_age: float = Field(default=1000.0, ge=0)
    max_age_hours: float = Field(default=24.0, gt=0)
    weight_fairshare: float = Field(default=1000.0, ge=0)
    weight_size: float = Field(default=0.0, ge=0)
    weight_length: float = Field(
        default=0.0,
        ge=0,
        description="favours short time limits (log scale, 0 at length_ref_hours and for "
        "open-ended jobs); keep it <= weight_age so waits stay bounded (ADR 0017)",
    )
    length_ref_hours: float = Field(default=168.0, gt=0)
    fairshare_half_life_hours: float = Field(default=24.0, gt=0)
    min_runtime_s: int = Field(default=300, ge=0)
    preempt_grace_s: int = Field(default=30, ge=0)
    booking_warning_s: int = Field(default=600, ge=0)
    booking_notice_min: int = Field(
        default=15,
        ge=1,
        le=1440,
        description="notify a booking's owner this long before it starts or ends",
    )
    notify_poll_s: float = Field(
        default=0.5, gt=0, le=60, description="how often the notification sender looks for work"
    )
    reserve_depth: int = Field(default=100, ge=0)
    preemption: bool = True
    max_preemptions: int = Field(
        default=3, ge=0, description="a job preempted this often is no longer a victim"
    )
    thrash_window_s: int = Field(
        default=1800, ge=0, description="the same pair of jobs never swaps GPUs twice within this"
    )
    drain_after_s: int = Field(
        default=0,
        ge=0,
        description="after this wait, the first blocked job whose start is "
        "unknown drains the GPUs it needs (no starvation of wide jobs; ADR 0015)",
    )
    backfill: bool = Field(
        default=True,
        description="jobs may start ahead of a blocked one when they delay no reservation; "
        "off: strict priority order, nothing passes the first blocked job",
    )
    foreign_gpus_blocked: bool = True

    # ---- node agents (issue #4, ADR 0006) ----
    agent_token: str | None = Field(
        default=None, description="the cluster token agents must present (none: no remote agents)"
    )
    local_agent: Literal["auto", "off"] = Field(
        default="auto",
        description="run an agent in the server for this host's GPUs: 'auto' does when there "
        "is no config file or the config names this host's node (with --demo: fake GPUs)",
    )
    agent_interval_s: float = Field(default=2.0, ge=0.2, le=300)
    agent_state_dir: Path | None = None
    missed_heartbeats: int = Field(default=3, ge=2, le=100)
    restart_grace_s: float = Field(
        default=60.0, ge=0, description="after a start, how long known nodes have to report"
    )
    requeue_lost: bool = True
    batch_requires_agent: bool = Field(
        default=True, description="batch jobs go only to nodes whose agent reports (runs them)"
    )
    max_requeues: int = Field(default=3, ge=0)
    idle_booking_minutes: int = Field(default=30, ge=1)
    # ---- idle reclaim of booked GPUs (issue #14, ADR 0013); tenants may override ----
    idle_reclaim: bool = Field(
        default=False, description="warn, then release bookings whose GPUs sit idle"
    )
    idle_after_min: int = Field(default=30, ge=1, description="idle this long: warn the owner")
    idle_memory_after_min: int = Field(
        default=120, ge=1, description="the same for a GPU that holds memory at ~0 % use"
    )
    idle_util_pct: float = Field(default=5.0, ge=0, le=100)
    idle_memory_mb: int = Field(default=500, ge=0)
    idle_grace_min: int = Field(default=15, ge=0, description="from the warning to the release")
    idle_check_s: int = Field(default=30, ge=1, le=3600)
    history_minutes_days: int = Field(default=14, ge=1)
    history_hours_days: int = Field(default=365, ge=1)
    usage_busy_pct: float = Field(
        default=5.0,
        ge=0,
        le=100,
        description="usage reports: a history bucket whose mean utilization reaches this is busy",
    )
    log_max_mb: int = Field(default=16, ge=1, le=4096)

    # ---- identity (issue #12, ADR 0009) ----
    peer_identity: bool = Field(
        default=True,
        description="local clients are who the kernel says (loopback TCP, the Unix socket); "
        "turn off when a reverse proxy on this host forwards other people's requests",
    )
    unix_socket: Path | None = Field(
        default=None, description="also listen on this Unix socket (identity: SO_PEERCRED)"
    )
    auth_proxy_header: str | None = Field(
        default=None, description="single sign-on: the user header a trusted proxy sets"
    )
    auth_proxies: list[str] = Field(
        default_factory=list, description="addresses/CIDRs allowed to set auth_proxy_header"
    )
    compat_writes: Literal["authenticated", "open"] = Field(
        default="authenticated",
        description="'open' lets unauthenticated ProcPlan-notify and Go-API writes act as "
        "the shared user 'anonymous' (on anonymous bookings and jobs only)",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list, description="public names of this server (Host header)"
    )
    allowed_origins: list[str] = Field(
        default_factory=list, description="other web origins allowed to send writes"
    )
    allow_root_jobs: bool = Field(default=False, description="batch jobs may run as uid 0")
    token_cache_s: float = Field(default=5.0, ge=0, le=300)
    session_days: int = Field(default=14, ge=1, le=365)

    @field_validator("host")
    @classmethod
    def _strip_host(cls, value: str) -> str:
        return value.strip()

    @field_validator("root_path")
    @classmethod
    def _check_root_path(cls, value: str) -> str:
        value = value.strip()
        if value in ("", "/"):
            return ""
        if not _ROOT_PATH.fullmatch(value) or any(s in (".", "..") for s in value.split("/")):
            raise ValueError(
                f"root_path '{value[:100]}' must look like '/procplan' or '/a/b': a leading "
                "'/', no trailing '/', letters, digits and . _ ~ - only"
            )
        if value.split("/")[1] in RESERVED_ROOTS:
            raise ValueError(f"root_path '{value}' starts with a path the server serves")
        return value

    @model_validator(mode="after")
    def _check_tls(self) -> Settings:
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("HTTPS needs both ssl_certfile and ssl_keyfile")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = _toml_path(init_settings)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    def resolved_db_url(self) -> str:
        """The database URL: explicit URL, else the ``database`` file, else the data dir."""
        if self.db_url:
            return self.db_url
        path = self.database or default_data_dir() / "procplan.db"
        path = path.expanduser().resolve()
        make_private_dirs(path.parent)
        return f"sqlite:///{path}"

    @property
    def local_node_id(self) -> str:
        """The node id of this host: ``local_node`` or the host name."""
        return self.local_node or socket.gethostname()

    @property
    def tls(self) -> bool:
        """True when the server speaks HTTPS itself (``ssl_certfile``/``ssl_keyfile``)."""
        return self.ssl_certfile is not None

    @property
    def exposed(self) -> bool:
        """True when the server listens beyond the loopback interface."""
        return self.host not in LOOPBACK_HOSTS


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents with mode 0700 (as XDG asks for data
    directories): the database lives there, and a parent others may write to would let them
    swap the directory. Existing directories are left as they are."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)


def _toml_path(init_settings: PydanticBaseSettingsSource) -> Path | None:
    explicit: Any = init_settings().get("settings_file")
    raw = explicit or os.environ.get("PROCPLAN_SETTINGS")
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ValueError(f"settings file '{path}' does not exist")
    return path
