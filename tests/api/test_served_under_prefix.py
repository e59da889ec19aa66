"""Works offline and behind a proxy (issue #16 item 7, ADR 0019), in process.

- ``/docs`` (Swagger UI) and ``/redoc`` load every script, style and icon from this server:
  no page references another host, and every asset it names is served.
- ``root_path = "/procplan"``: the app answers under the prefix whether the proxy strips it
  or not, builds its URLs (redirects, the OpenAPI ``servers``, the docs pages' links, the
  session cookie's path) with the prefix, and the web UI names no absolute path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.conftest import demo_settings

from procplan.api.app import DEFAULT_WEB_ROOT
from procplan.config import Settings
from procplan.core.identity import Role
from procplan.server import compose

PREFIX = "/procplan"
PASSWORD = "a long enough passphrase"
_LINKS = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.fixture
def under_prefix(sqlite_url: str) -> Iterator[TestClient]:
    """A demo server configured with ``root_path = "/procplan"``."""
    built = compose(demo_settings(sqlite_url, root_path=PREFIX))
    with TestClient(built.app) as client:
        yield client
    built.store.dispose()


@pytest.fixture
def at_root(sqlite_url: str) -> Iterator[TestClient]:
    built = compose(demo_settings(sqlite_url))
    with TestClient(built.app) as client:
        yield client
    built.store.dispose()


def linked(page: str) -> list[str]:
    """Every URL a docs page loads: scripts, styles, icon, the OpenAPI document."""
    return [a or b for a, b in _LINKS.findall(page)]


# ---- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"), [("/procplan", "/procplan"), ("/a/b-c.d_e~", "/a/b-c.d_e~"), ("", ""),
                        ("/", ""), (" /x ", "/x")],
)  # fmt: skip
def test_root_path_accepts_a_plain_prefix(given: str, kept: str) -> None:
    assert Settings(root_path=given).root_path == kept


@pytest.mark.parametrize(
    "given",
    ["procplan", "/procplan/", "//procplan", "/pro plan", "/a/../b", "/x?y", "/é", "/api",
     "/docs/x", "/static-docs", "/health", "/<script>"],
)  # fmt: skip
def test_root_path_refuses_what_is_not_a_plain_prefix(given: str) -> None:
    with pytest.raises(ValueError, match="root_path"):
        Settings(root_path=given)


def test_https_needs_a_certificate_and_its_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="both ssl_certfile and ssl_keyfile"):
        Settings(ssl_certfile=tmp_path / "cert.pem")
    with pytest.raises(ValueError, match="both ssl_certfile and ssl_keyfile"):
        Settings(ssl_keyfile=tmp_path / "key.pem")
    both = Settings(ssl_certfile=tmp_path / "cert.pem", ssl_keyfile=tmp_path / "key.pem")
    assert both.tls and not Settings().tls


# ---- offline documentation -----------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["", PREFIX])
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_this_server(
    sqlite_url: str, prefix: str, page: str
) -> None:
    built = compose(demo_settings(sqlite_url, root_path=prefix))
    with TestClient(built.app) as client:
        html = client.get(prefix + page)
        assert html.status_code == 200
        assert html.headers["content-type"].startswith("text/html")
        assert not re.search(r"https?://|//[a-z]", html.text), "a link to another host"
        urls = linked(html.text)
        assert f"{prefix}/openapi.json" in urls
        assert len(urls) >= 3, urls  # the script, the icon, the document (+ Swagger's css)
        for url in urls:
            assert url.startswith(prefix + "/"), url
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 100, url
        # The browser refuses whatever the pages' scripts would load from elsewhere.
        policy = html.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "http" not in policy
        nonce = re.search(r"'nonce-([^']+)'", policy)
        assert nonce and all(f'nonce="{nonce[1]}"' in tag for tag in
                             re.findall(r"<script(?![^>]*src)[^>]*>", html.text))  # fmt: skip
        if page == "/docs":  # Swagger UI may not ask swagger.io to validate the document
            assert "validatorUrl" in html.text and '"validatorUrl": null' in html.text
    built.store.dispose()


def test_docs_assets_are_public_static_files(at_root: TestClient) -> None:
    script = at_root.get("/static-docs/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert at_root.get("/static-docs/redoc.standalone.js").status_code == 200
    assert at_root.get("/static-docs/nothing-here.js").status_code == 404


# ---- root_path -------------------------------------------------------------------------------


def test_the_api_answers_with_and_without_the_prefix(under_prefix: TestClient) -> None:
    """A proxy that strips the prefix sends ``/api/...``; one that does not, ``/procplan/api/
    ...``; agents and the CLI on the cluster's network may use the server's own address."""
    stripped = under_prefix.get("/api/v1/nodes")
    kept = under_prefix.get(f"{PREFIX}/api/v1/nodes")
    assert stripped.status_code == kept.status_code == 200
    assert stripped.json()["nodes"] == kept.json()["nodes"]
    assert under_prefix.get(f"{PREFIX}/health").json() == {"status": "healthy"}
    # Native errors keep their machine code under the prefix (the path is read without it).
    missing = under_prefix.get(f"{PREFIX}/api/v1/bookings/999999")
    assert missing.status_code == 404 and missing.json()["code"] == "unknown_booking"
    unknown = under_prefix.get(f"{PREFIX}/api/v1/no-such-route")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"


def test_pages_are_served_under_the_prefix(under_prefix: TestClient) -> None:
    bare = under_prefix.get(PREFIX, follow_redirects=False)
    assert bare.status_code == 308 and bare.headers["location"] == PREFIX + "/"
    query = under_prefix.get(PREFIX + "?x=1", follow_redirects=False)
    assert query.headers["location"] == PREFIX + "/?x=1"
    index = under_prefix.get(PREFIX + "/")
    assert index.status_code == 200 and 'src="app.js"' in index.text
    for name in ("board.html", "app.js", "style.css"):
        assert under_prefix.get(f"{PREFIX}/{name}").status_code == 200, name


def test_openapi_names_the_prefix_as_its_server(under_prefix: TestClient) -> None:
    """Swagger UI's "Try it out" sends its requests under the prefix."""
    document = under_prefix.get(f"{PREFIX}/openapi.json").json()
    assert document["servers"][0]["url"] == PREFIX
    assert "/api/v1/nodes" in document["paths"]  # paths stay as the app declares them


def test_a_redirect_keeps_the_prefix(under_prefix: TestClient) -> None:
    """A trailing slash is redirected away, to the address under the prefix (what the browser
    asked for, stripped by the proxy or not)."""
    for asked in (f"{PREFIX}/api/v1/nodes/", "/api/v1/nodes/"):
        answer = under_prefix.get(asked, follow_redirects=False)
        assert answer.status_code == 307
        assert answer.headers["location"] == f"http://testserver{PREFIX}/api/v1/nodes"


@pytest.mark.parametrize(("prefix", "cookie_path"), [("", "/"), (PREFIX, PREFIX)])
def test_the_session_cookie_is_scoped_to_the_prefix(
    sqlite_url: str, prefix: str, cookie_path: str
) -> None:
    """Under a prefix the browser sends the session cookie to this site's pages only, not
    to other applications behind the same host name."""
    built = compose(demo_settings(sqlite_url, root_path=prefix))
    built.accounts.add_user("webuser", Role.USER, None, PASSWORD)
    with TestClient(built.app) as client:
        signed = client.post(
            f"{prefix}/api/v1/session", json={"user": "webuser", "password": PASSWORD}
        )
        assert signed.status_code == 200, signed.text
        cookie = signed.headers["set-cookie"]
        assert f"Path={cookie_path};" in cookie or cookie.endswith(f"Path={cookie_path}")
        me = client.get(f"{prefix}/api/v1/me")
        assert me.json()["user"] == "webuser"
        out = client.delete(f"{prefix}/api/v1/session")
        assert f"Path={cookie_path}" in out.headers["set-cookie"]
    built.store.dispose()


# ---- the web UI names no absolute path -----------------------------------------------------

ABSOLUTE = re.compile(
    r"""(?:['"`]/api\b|\b(?:href|src|action)=["']/(?!/)|fetch\(\s*['"`]/|EventSource\(\s*['"`]/)"""
)


def test_the_web_ui_uses_relative_urls_only() -> None:
    """Every page, script and link resolves next to the page, so the UI works at ``/`` and
    under a proxy's prefix alike (``tests/browser/test_behind_proxy.py`` tries it)."""
    found = []
    for path in sorted(DEFAULT_WEB_ROOT.iterdir()):
        if path.suffix not in (".js", ".html", ".css"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("//", 1)[0] if path.suffix == ".js" else line
            if ABSOLUTE.search(code) or re.search(r"url\(\s*['\"]?/", code):
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert found == []
