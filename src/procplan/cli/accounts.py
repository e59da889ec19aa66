"""``procplan login``, ``logout``, ``whoami`` and ``audit``: signing in to a server and seeing
what was done in whose name (issue #12).

``login`` trades a password for a session secret and saves it for that server URL
(``client.auth.CredentialStore``, mode 0600), so that later commands prove who they are without
asking again; ``--token-stdin`` saves an API token instead. Passwords and tokens are read from
the terminal or stdin, never from arguments (``ps`` shows those to every local user), and no
command here prints a secret.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from procplan.cli.common import (
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    AsOption,
    FormatOption,
    OutputFormat,
    UrlOption,
    connect,
    fail,
    output_format,
    print_rows,
    read_stdin_line,
    usage_error,
    warn,
)
from procplan.cli.format import short_time
from procplan.client import ApiError, ProcPlanClient, ServerUnreachable, current_user, resolve_url
from procplan.client.auth import (
    SESSION,
    TOKEN,
    TOKEN_ENV,
    Credential,
    CredentialsError,
    CredentialStore,
)
from procplan.present import capped, cell, terminal_text

Payload = Mapping[str, Any]


def _save(url: str, secret: str, kind: str, user: str | None) -> CredentialStore:
    """Save the new credential; a session it replaces is revoked (best effort: signing in
    again must not fail because the old session is already gone)."""
    store = CredentialStore()
    previous = store.get(url)
    try:
        store.save(url, secret, kind, user)
    except CredentialsError as exc:
        fail(f"error: {exc}")
    if previous is not None and previous.kind == SESSION and previous.secret != secret:
        _revoke_session(url, previous.secret)
    return store


def _env_note() -> None:
    if os.environ.get(TOKEN_ENV, "").strip():
        warn(f"note: ${TOKEN_ENV} is set, and commands use it before what login saved")


def login(
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="Your ProcPlan user name (default: your login name)"),
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from stdin, not the terminal"),
    ] = False,
    token_stdin: Annotated[
        bool,
        typer.Option(
            "--token-stdin",
            help="Save the API token on stdin (from `procplan token create`) instead of "
            "signing in with a password",
        ),
    ] = False,
    url: UrlOption = None,
) -> None:
    """Sign in to a server and save the session for later commands (14 days by default)."""
    if token_stdin and (user is not None or password_stdin):
        usage_error("--token-stdin goes alone: the token says who you are", "--token-stdin")
    server = resolve_url(url)
    if token_stdin:
        _login_with_token(server, read_stdin_line("--token-stdin").strip())
        return
    name = user or current_user()
    if password_stdin:
        password = read_stdin_line("--password-stdin")
    else:
        password = getpass.getpass(f"Password for {terminal_text(name)} at {server}: ")
        if not password:
            usage_error("no password given", "--user")
    with connect(server, raw=True, discover=False) as client:
        answer = client.accounts.sign_in(name, password)
    secret, signed_in = answer.get("token"), answer.get("user")
    if not isinstance(secret, str) or not secret:
        fail("error: the server signed you in but sent no session token (is it up to date?)")
    store = _save(server, secret, SESSION, signed_in if isinstance(signed_in, str) else name)
    typer.echo(f"Signed in to {terminal_text(server)} as {_who(answer)}; saved in {store.path}")
    _env_note()


def _login_with_token(server: str, token: str) -> None:
    """Check the token with ``/me`` before saving it: a typo is refused now, not later."""
    given = Credential(token, TOKEN, "stdin")
    with connect(server, raw=True, credential=given, discover=False) as client:
        answer = client.accounts.me()
    user = answer.get("user")
    if not isinstance(user, str) or answer.get("via") != TOKEN:
        fail("error: the server does not take this as an API token")
    store = _save(server, token, TOKEN, user)
    typer.echo(f"Saved the API token of {_who(answer)} for {terminal_text(server)} in {store.path}")
    _env_note()


def _who(me: Payload) -> str:
    """``alice (admin)``: a sanitised name and its role."""
    role = me.get("role")
    return f"{capped(me.get('user'))}" + (f" ({capped(role)})" if role else "")


def logout(url: UrlOption = None) -> None:
    """Forget the credential saved for a server; a session is revoked on the server too."""
    server = resolve_url(url)
    store = CredentialStore()
    saved = store.get(server)
    if saved is None:
        typer.echo(f"Nothing saved for {terminal_text(server)}.")
        _env_note()
        return
    problem: tuple[str, int] | None = None
    if saved.kind == SESSION:
        problem = _revoke_session(server, saved.secret)
    try:
        store.forget(server)
    except CredentialsError as exc:
        fail(f"error: {exc}")
    if saved.kind == SESSION:
        typer.echo(f"Signed out of {terminal_text(server)}.")
    else:
        typer.echo(
            f"Forgot the API token saved for {terminal_text(server)}; it stays valid until "
            "revoked (`procplan token list`, `procplan token revoke ID`)."
        )
    _env_note()
    if problem is not None:
        fail(*problem)


def _revoke_session(server: str, secret: str) -> tuple[str, int] | None:
    """Revoke the session on the server; the message and exit code when that failed (the
    saved copy is forgotten either way: the user asked to be signed out here)."""
    try:
        with ProcPlanClient(server, discover=False) as client:
            client.accounts.sign_out(secret)
    except ServerUnreachable as exc:
        reason = f"cannot reach ProcPlan server at {exc.url}: {exc.reason}"
        return f"{reason}; the session was not revoked there", EXIT_UNREACHABLE
    except ApiError as exc:
        return f"error: the server did not revoke the session: {exc.message}", EXIT_REFUSED
    return None


VIA_TEXT = {
    "token": "an API token",
    "session": "a sign-in session",
    "peer": "this host's Unix user (the kernel says who you are)",
    "proxy": "the single sign-on proxy",
}


def whoami_lines(me: Payload, credential: Credential | None, server: str) -> list[str]:
    """``Key: value`` lines of ``/me``, plus where the client's credential came from."""
    rows = [
        ("User", str(me.get("user") or "")),
        ("Role", str(me.get("role") or "")),
        ("Via", VIA_TEXT.get(str(me.get("via")), str(me.get("via") or ""))),
        ("Unix user", str(me.get("unix_user") or "")),
        ("Manages", ", ".join(str(t) for t in me.get("manages") or [])),
    ]
    acting_for = me.get("acting_as_admin_for")
    if acting_for:
        rows.append(("Acting for", f"{acting_for} (as admin {me.get('actor')})"))
    if credential is not None:
        source = credential.source
        rows.append(("Credential", f"${TOKEN_ENV}" if source == TOKEN_ENV else source))
    rows.append(("Server", server))
    return [f"{key}: {terminal_text(value)}" for key, value in rows if value]


def whoami(
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw answer")] = False,
    url: UrlOption = None,
    act_as: AsOption = None,
) -> None:
    """Who the server takes you for, and how it knows (exit 1 when nobody is signed in)."""
    server = resolve_url(url)
    with connect(server, raw=as_json, act_as=act_as) as client:
        me = client.accounts.me()
        credential = client.credential
    if as_json:
        typer.echo(json.dumps(me, indent=2))
    elif me.get("user"):
        typer.echo("\n".join(whoami_lines(me, credential, server)))
    if credential is not None and me.get("via") not in (TOKEN, SESSION):
        warn("note: the server did not take the saved sign-in (expired?): `procplan login`")
    if not me.get("user"):
        fail(
            f"Not signed in to {server}: run `procplan login`, set ${TOKEN_ENV}, or run this "
            "on the server's own host"
        )


def audit_table(entries: Sequence[Payload]) -> Table:
    """Newest first; an admin's change to someone else's object is marked ``as admin``."""
    table = Table(title="Audit log", title_justify="left")
    for column in ("WHEN", "ACTOR", "ACTION", "TARGET", "OWNER", "VIA", "DETAIL"):
        table.add_column(column)
    for entry in entries:
        actor = cell(entry.get("actor") or "")
        if entry.get("as_admin"):
            actor.append(Text(" as admin", style="bold yellow"))
        table.add_row(
            short_time(entry.get("at")),
            actor,
            cell(entry.get("action") or ""),
            cell(entry.get("target") or ""),
            cell(entry.get("owner") or ""),
            cell(entry.get("via") or ""),
            cell(entry.get("detail") or ""),
        )
    return table


def audit(
    user: Annotated[
        str | None, typer.Option(help="Only entries where this user acted or owned the target")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many rows")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many newer entries")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw entries")] = False,
    fmt: FormatOption = None,
    url: UrlOption = None,
) -> None:
    """Who changed what, newest first (yours; an admin sees everyone's)."""
    as_json = output_format(as_json, fmt) is OutputFormat.JSON
    with connect(url, raw=as_json) as client:
        page = client.accounts.audit(user=user, limit=limit, offset=offset or None)
    rows = page.get("entries") or []
    if not print_rows(rows, as_json, "No audit entries.", audit_table, fmt):
        return
    total = page.get("total", len(rows))
    if isinstance(total, int) and total > offset + len(rows):
        shown = f"{offset + 1}–{offset + len(rows)}"
        typer.echo(f"Showing {shown} of {total}; use --offset or --limit to see more.")
