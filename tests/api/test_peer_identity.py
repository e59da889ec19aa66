"""Local clients are who the kernel says they are; a trusted proxy names remote ones.

Real sockets throughout: the socket table for loopback TCP, ``SO_PEERCRED`` for Unix
sockets, and a real uvicorn serving the app with the server's own HTTP protocol. A process
of another Unix user (``nobody``) is a plain user; the tests' own user (root in CI, the
server's own user here) is an admin.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from starlette.testclient import TestClient
from tests.conftest import missing_dependency

from procplan import peercred
from procplan.api.identity import IdentityConfig
from procplan.peercred import loopback_uid, unix_peer_uid
from procplan.server import Composed
from procplan.testing import ThreadedServer

ME = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture
def peer_url(composed: Composed) -> Iterator[str]:
    with ThreadedServer(composed.app, peer_identity=True) as url:
        yield url


def test_the_socket_table_names_a_loopback_clients_uid() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, peer = server.accept()
        with client, accepted:
            assert loopback_uid(peer, accepted.getsockname()) == os.geteuid()
            assert loopback_uid(("10.1.2.3", peer[1]), accepted.getsockname()) is None
            assert loopback_uid((peer[0], 1), accepted.getsockname()) is None  # no such socket


def test_without_netlink_the_socket_table_answers_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where sock_diag is refused, the uid comes from ``/proc/net/tcp`` instead."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, peer = server.accept()
        with client, accepted:
            by_netlink = loopback_uid(peer, accepted.getsockname())

            def refused(*_: object) -> None:
                raise peercred._NetlinkRefused("test")

            monkeypatch.setattr(peercred, "_diag_uid", refused)
            assert loopback_uid(peer, accepted.getsockname()) == by_netlink == os.geteuid()
            assert loopback_uid((peer[0], 1), accepted.getsockname()) is None


def test_so_peercred_names_a_unix_socket_peer() -> None:
    left, right = socket.socketpair()
    with left, right:
        assert unix_peer_uid(left) == os.geteuid()


def test_a_local_client_is_its_unix_user(peer_url: str) -> None:
    me = httpx.get(f"{peer_url}/api/v1/me").json()
    assert (me["user"], me["via"], me["role"], me["unix_user"]) == (ME, "peer", "admin", ME)


def test_a_relayed_request_is_nobody(peer_url: str) -> None:
    """A proxy on this host relays other people's requests: its uid is not theirs."""
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        me = httpx.get(f"{peer_url}/api/v1/me", headers={header: "10.0.0.9"}).json()
        assert me["user"] is None, header


def test_a_claimed_name_changes_nothing(peer_url: str) -> None:
    me = httpx.get(f"{peer_url}/api/v1/me", headers={"X-ProcPlan-User": "root"}).json()
    assert me["actor"] == ME


def test_another_unix_user_is_a_plain_user(peer_url: str) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("curl") is None:
        missing_dependency("needs root, setpriv and curl to connect as another user")
    nobody = pwd.getpwnam("nobody")
    as_nobody = [
        "setpriv",
        f"--reuid={nobody.pw_uid}",
        f"--regid={nobody.pw_gid}",
        "--clear-groups",
    ]

    def curl(*args: str) -> str:
        done = subprocess.run(
            [*as_nobody, "curl", "-s", *args], capture_output=True, text=True, timeout=30
        )
        return done.stdout

    assert '"user":"nobody"' in curl(f"{peer_url}/api/v1/me")
    assert '"role":"user"' in curl(f"{peer_url}/api/v1/me")
    forged = curl(
        "-X", "POST", "-H", "Content-Type: application/json", "-H", "X-ProcPlan-User: root",
        "-d", '{"command": ["id"], "gpu_count": 0}', f"{peer_url}/api/v1/jobs",
    )  # fmt: skip
    assert '"not_admin"' in forged
    tenants = curl(
        "-X", "POST", "-H", "Content-Type: application/json",
        "-d", '{"name": "mine"}', f"{peer_url}/api/v1/tenants",
    )  # fmt: skip
    assert '"status":403' in tenants


def test_peer_identity_can_be_turned_off(composed: Composed, peer_url: str) -> None:
    config: IdentityConfig = composed.app.state.identity
    composed.app.state.identity = replace(config, peer_identity=False)
    assert httpx.get(f"{peer_url}/api/v1/me").json()["user"] is None


def test_a_trusted_proxy_names_the_user(composed: Composed, peer_url: str) -> None:
    config: IdentityConfig = composed.app.state.identity
    composed.app.state.identity = replace(
        config,
        proxy_header="X-Forwarded-User",
        proxies=(ipaddress.ip_network("127.0.0.0/8"),),
    )
    named = httpx.get(f"{peer_url}/api/v1/me", headers={"X-Forwarded-User": "sso-alice"})
    assert (named.json()["user"], named.json()["via"]) == ("sso-alice", "proxy")
    unnamed = httpx.get(f"{peer_url}/api/v1/me").json()
    assert unnamed["user"] is None  # the proxy's own connection is nobody's
    with TestClient(composed.app) as elsewhere:  # not from the proxy: the header is ignored
        ignored = elsewhere.get("/api/v1/me", headers={"X-Forwarded-User": "sso-alice"})
        assert ignored.json()["user"] is None
