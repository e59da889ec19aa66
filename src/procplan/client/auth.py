"""Who the client says it is: the credential it presents and whom it asks to act for.

The server believes only what is proven (issue #12, ADR 0009): a bearer API token, a session
secret (the ``procplan_session`` cookie), or, on its own host, the kernel's word about the
connecting Unix user. So the client picks one credential, in this order:

1. ``$PROCPLAN_TOKEN`` — an API token (``procplan token create``), sent as a bearer token; a
   variable wins so that CI jobs and one-off shells never depend on a file;
2. what ``procplan login`` saved for this server URL in ``credentials.json`` (in
   ``platformdirs.user_config_dir("procplan")``): a session secret or an API token (``login
   --token-stdin``), both sent as a bearer token (a session that has ended is a 401 that says
   so, never a silent fall-back to the Unix user);
3. nothing: the server then knows a local caller by its Unix user.

``X-ProcPlan-User`` is only sent when the user asked to act for someone (``--as`` or
``$PROCPLAN_AS``): the server refuses it from non-admins, so sending the login name by default
would only make writes fail.

The credentials file holds secrets, so it is written the way ``store/file_modes.py`` writes the
database: a fresh file created ``0600`` with ``O_EXCL`` (never reusing what someone put
there), then renamed over the old one, in a directory made ``0700``.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs

TOKEN_ENV = "PROCPLAN_TOKEN"
AS_ENV = "PROCPLAN_AS"
SESSION_COOKIE = "procplan_session"
CREDENTIALS_FILE = "credentials.json"
UNIX_SCHEME = "unix:"
SESSION = "session"  # a stored sign-in (``procplan login``): revoked by ``procplan logout``
TOKEN = "token"  # an API token: sent as ``Authorization: Bearer``
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
_DEFAULT_PORTS = {"http": 80, "https": 443}


class CredentialsError(Exception):
    """The credentials file cannot be written (or read for a change)."""


@dataclass(frozen=True, slots=True, repr=False)
class Credential:
    """A secret the client presents as a bearer token: ``kind`` says what it is (a session or
    an API token), ``source`` where it came from (for ``procplan whoami``; never the secret)."""

    secret: str
    kind: str = TOKEN
    source: str = TOKEN_ENV
    user: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    def __repr__(self) -> str:  # a secret never reaches a log or a traceback through repr
        return f"Credential(kind={self.kind!r}, source={self.source!r}, user={self.user!r})"


def unix_socket_path(url: str) -> str | None:
    """The socket path of a ``unix:///run/procplan.sock`` URL (``unix:relative.sock`` too),
    or ``None`` for any other URL."""
    if not url.lower().startswith(UNIX_SCHEME):
        return None
    rest = url[len(UNIX_SCHEME) :]
    if rest.startswith("//"):
        rest = rest[2:]
    return rest or None


def server_key(url: str) -> str:
    """The key a server's credentials are saved under: the same server spelled differently
    (``HTTP://Host:80/``, ``http://host``) finds the same entry; other paths do not."""
    cleaned = url.strip().rstrip("/")
    socket_path = unix_socket_path(cleaned)
    if socket_path is not None:
        return "unix://" + os.path.abspath(socket_path)
    parts = urlsplit(cleaned)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        return cleaned
    shown = "" if port is None or port == _DEFAULT_PORTS.get(scheme) else f":{port}"
    return f"{scheme}://{host}{shown}{parts.path.rstrip('/')}"


def credentials_path() -> Path:
    return Path(platformdirs.user_config_dir("procplan")) / CREDENTIALS_FILE


class CredentialStore:
    """``credentials.json``: one entry per server key, ``{"kind", "secret", "user",
    "saved_at"}``. An unreadable or damaged file reads as empty (a command must not fail
    because of it: without a credential the server still knows local users)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or credentials_path()

    def entries(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        servers = data.get("servers") if isinstance(data, dict) else None
        if not isinstance(servers, dict):
            return {}
        return {k: v for k, v in servers.items() if isinstance(v, dict)}

    def get(self, url: str) -> Credential | None:
        entry = self.entries().get(server_key(url))
        if entry is None:
            return None
        secret, kind, user = entry.get("secret"), entry.get("kind"), entry.get("user")
        if not isinstance(secret, str) or not secret or kind not in (SESSION, TOKEN):
            return None
        return Credential(secret, kind, str(self.path), user if isinstance(user, str) else None)

    def save(self, url: str, secret: str, kind: str, user: str | None) -> None:
        """Remember ``secret`` for ``url`` (replacing what was saved for it)."""
        entries = self.entries()
        entries[server_key(url)] = {
            "kind": kind,
            "secret": secret,
            "user": user,
            "saved_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        }
        self._write(entries)

    def forget(self, url: str) -> Credential | None:
        """Drop the entry of ``url``; returns it (``None`` when there was none)."""
        found = self.get(url)
        entries = self.entries()
        if entries.pop(server_key(url), None) is None:
            return None
        self._write(entries)
        return found

    def _write(self, entries: dict[str, dict[str, Any]]) -> None:
        directory = self.path.parent
        body = json.dumps({"version": 1, "servers": entries}, indent=2, sort_keys=True) + "\n"
        temporary = directory / f".{self.path.name}.{secrets.token_hex(8)}.tmp"
        try:
            private_directory(directory)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = os.open(temporary, flags, PRIVATE_FILE)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise CredentialsError(f"cannot write {self.path}: {exc.strerror or exc}") from exc


def private_directory(path: Path) -> None:
    """Create ``path`` (and missing parents) with mode 0700, like ``config.make_private_dirs``
    (not imported: it would load the server's settings machinery into every CLI start), and
    take group and other access away from ``path`` itself if it is ours and has them."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)
    info = path.stat()  # a symlinked config directory (dotfiles) is the user's choice
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(f"{path} is not a directory")
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(path, stat.S_IMODE(info.st_mode) & PRIVATE_DIR)


def current_user() -> str:
    """The local login name: whom the server's host takes us for without a credential, the
    owner an agent runs jobs as, the fallback for "mine".

    ``getpass.getuser`` fails in some containers (no passwd entry, no env vars); the server
    still needs a name, so fall back to the numeric uid rather than refusing to work.
    """
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def resolve_credential(url: str, store: CredentialStore | None = None) -> Credential | None:
    """``$PROCPLAN_TOKEN``, else what ``procplan login`` saved for ``url``, else ``None``."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return Credential(token, TOKEN, TOKEN_ENV)
    return (store or CredentialStore()).get(url)


def resolve_act_as(explicit: str | None) -> str | None:
    """Whom to act for: ``--as`` if given, else ``$PROCPLAN_AS``, else nobody (ourselves)."""
    for candidate in (explicit, os.environ.get(AS_ENV)):
        if candidate and candidate.strip():
            return candidate.strip()
    return None
