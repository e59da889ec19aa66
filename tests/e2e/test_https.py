"""HTTPS served by ``procplan server --ssl-certfile/--ssl-keyfile`` itself (issue #16 item 7).

One real server on a certificate from a throwaway CA (``trustme``), with ``--demo``'s
embedded agents and a Unix socket: clients that trust the CA get answers, others are refused
before anything is sent; the CLI trusts a CA named by ``SSL_CERT_FILE``; the embedded agents
report over HTTPS (they trust exactly the server's own certificate); the Unix socket stays
plain HTTP for local clients; the session cookie is ``Secure``.
"""

from __future__ import annotations

import getpass
import importlib.util
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.conftest import missing_dependency

from procplan.client.procplan_client import ProcPlanClient
from procplan.testing import ServerProcess, wait_until


@dataclass
class Https:
    server: ServerProcess
    ca_file: Path
    trust: ssl.SSLContext
    socket: Path


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Https]:
    if importlib.util.find_spec("trustme") is None:
        missing_dependency("the trustme package is missing (pip install -e '.[test]')")
    import trustme

    tmp = tmp_path_factory.mktemp("https")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = tmp / "cert.pem", tmp / "key.pem", tmp / "ca.pem"
    issued.private_key_pem.write_to_path(str(key))
    for pem in issued.cert_chain_pems:  # the leaf first, then the chain
        pem.write_to_path(str(cert), append=True)
    ca.cert_pem.write_to_path(str(ca_file))
    trust = ssl.create_default_context(cafile=str(ca_file))
    sock = tmp / "procplan.sock"
    args = ["--database", str(tmp / "tls.db"), "--demo", "--ssl-certfile", str(cert),
            "--ssl-keyfile", str(key), "--unix-socket", str(sock)]  # fmt: skip
    env = {"PROCPLAN_AGENT_INTERVAL_S": "0.5", "PROCPLAN_LOCAL_NODE": "tls-host"}
    with ServerProcess(args, env=env, tls=trust, log_file=tmp / "server.log") as server:
        assert server.url.startswith("https://")
        yield Https(server, ca_file, trust, sock)


def test_clients_that_trust_the_ca_get_answers_others_are_refused(https: Https) -> None:
    url = https.server.url
    assert httpx.get(f"{url}/health", verify=https.trust).json() == {"status": "healthy"}
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{url}/health", verify=ssl.create_default_context())
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the HTTPS port: no answer
        httpx.get(url.replace("https://", "http://") + "/health", timeout=5)


def test_the_local_user_is_still_known_over_https(https: Https) -> None:
    """Peer identity (ADR 0009) reads the TCP connection under the TLS layer."""
    me = httpx.get(f"{https.server.url}/api/v1/me", verify=https.trust).json()
    assert (me["user"], me["via"]) == (getpass.getuser(), "peer")


def test_the_embedded_agents_report_over_https(https: Https) -> None:
    def online() -> bool:
        nodes = httpx.get(f"{https.server.url}/api/v1/nodes", verify=https.trust).json()
        states = {node["id"]: node.get("state") for node in nodes["nodes"]}
        return states.get("node-a") == "online" and states.get("node-b") == "online"

    wait_until(online, timeout=30.0, step=0.2)


def test_the_client_trusts_a_ca_named_by_ssl_cert_file(
    https: Https, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(https.ca_file))
    with ProcPlanClient(https.server.url) as client:
        assert {n["id"] for n in client.nodes.list()["nodes"]} >= {"node-a", "node-b"}
    env = {**os.environ, "SSL_CERT_FILE": str(https.ca_file)}
    command = [sys.executable, "-m", "procplan.cli.main", "nodes", "--url", https.server.url]
    listed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "node-a" in listed.stdout
    env.pop("SSL_CERT_FILE")
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr or "certificate" in refused.stderr


def test_the_unix_socket_stays_plain_http(https: Https) -> None:
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(https.socket))) as local:
        answer = local.get("http://localhost/api/v1/me")
    assert answer.status_code == 200
    assert answer.json()["via"] == "peer"


def test_the_session_cookie_is_secure_over_https(https: Https) -> None:
    url, secret = https.server.url, "a long enough passphrase"
    made = httpx.post(f"{url}/api/v1/users", verify=https.trust,
                      json={"name": "tlsuser", "password": secret})  # fmt: skip
    assert made.status_code == 201, made.text
    signed = httpx.post(f"{url}/api/v1/session", verify=https.trust,
                        json={"user": "tlsuser", "password": secret})  # fmt: skip
    assert signed.status_code == 200, signed.text
    assert "secure" in signed.headers["set-cookie"].lower()
