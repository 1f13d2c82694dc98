"""The admin page behind its real front: provisioning/nginx/doorward.conf run by the real nginx,
the real waitress (web_admin.serving), clients bound to different loopback source addresses."""

from __future__ import annotations

import http.client
import re
import ssl
import subprocess
import urllib.parse
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from sqlalchemy import select

from appliance.config import Config
from appliance.store.central import open_local_replica
from appliance.store.models_admin import AuditEntry, LoginAttempt
from tests.provisioning.prov_helpers import need_tool, run_nginx, self_signed_cert

PW = "front door key 2026"
ATTACKER, OWNER = "127.0.0.3", "127.0.0.4"


class Browser:
    """A tiny cookie-keeping HTTP(S) client whose connections leave from `source`."""

    def __init__(self, port: int, source: str, ctx: ssl.SSLContext | None) -> None:
        self.port, self.source, self.ctx = port, source, ctx
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, body: dict | None = None, headers: dict | None = None
    ) -> tuple[http.client.HTTPResponse, str]:
        if self.ctx is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", self.port, timeout=30, context=self.ctx,
                source_address=(self.source, 0),
            )  # fmt: skip
        else:
            conn = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=30, source_address=(self.source, 0)
            )
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urllib.parse.urlencode(body)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        conn.close()
        for raw in resp.headers.get_all("Set-Cookie") or []:
            c = SimpleCookie(raw)
            for k, m in c.items():
                self.cookies[k] = m.value
        return resp, text

    def login(self, username: str, password: str) -> http.client.HTTPResponse:
        _, page = self.request("GET", "/login")
        token = re.findall(r'name="csrf_token" value="([^"]+)"', page)[-1]
        resp, _ = self.request(
            "POST", "/login", {"csrf_token": token, "username": username, "password": password}
        )
        return resp


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict]:
    from web_admin import create_app
    from web_admin.accounts import create_account
    from web_admin.serving import AdminServer

    need_tool("nginx")
    cert, key = self_signed_cert(tmp_path / "tls", cn="127.0.0.1")
    config = Config.convert(
        {
            "device": {"data_dir": str(tmp_path / "var")},
            "hardware": {"pin_factory": "mock"},
            "admin": {"login_ip_limit": 4, "login_max_failures": 2, "max_upload_mb": 1},
        }
    )
    db = open_local_replica(config)
    create_account(db, "admin", PW, "admin")
    app = create_app(config=config, db=db, test_config={"BOOTSTRAP_ADMIN": False})
    srv = AdminServer(app, "127.0.0.1", 0).start()
    try:
        with run_nginx(tmp_path / "nginx", srv.port, cert, key, config.admin.max_upload_mb) as (
            _,
            https_port,
        ):
            ctx = ssl.create_default_context(cafile=str(cert))
            yield {"db": db, "config": config, "https": https_port, "ctx": ctx, "admin": srv.port}
    finally:
        srv.stop()
        db.close()


def test_flood_from_one_address_spares_another_and_cookies_are_secure(stack) -> None:
    db, limit = stack["db"], stack["config"].admin.login_ip_limit
    attacker = Browser(stack["https"], ATTACKER, stack["ctx"])
    for _ in range(limit + 2):
        assert attacker.login("admin", "not the password").status == 401
    assert attacker.login("admin", PW).status == 401  # the flooding address itself is refused

    owner = Browser(stack["https"], OWNER, stack["ctx"])
    # whatever X-Forwarded-For a client sends, nginx replaces it with the client's own address
    resp = owner.login("admin", PW)
    assert resp.status == 302, resp.status
    session = [c for c in resp.headers.get_all("Set-Cookie") if c.startswith("doorward_session=")]
    assert session and "Secure" in session[0] and "HttpOnly" in session[0]
    assert resp.headers.get_all("Strict-Transport-Security") == ["max-age=31536000"]
    page, _ = owner.request("GET", "/", headers={"X-Forwarded-For": "10.9.9.9"})
    assert page.status == 200

    with db.session() as s:
        attempts = {(a.ip, a.success) for a in s.scalars(select(LoginAttempt))}
        audit = s.scalars(select(AuditEntry).where(AuditEntry.action == "login")).one()
    assert attempts == {(ATTACKER, False), (OWNER, True)}
    assert audit.ip == OWNER and audit.actor == "admin"


def _status_of_headers_only(stack: dict, path: str, length: int) -> int:
    """The status answered to a POST announcing `length` body bytes, none of them sent."""
    conn = http.client.HTTPSConnection(
        "127.0.0.1", stack["https"], timeout=30, context=stack["ctx"]
    )
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("Content-Length", str(length))
    conn.endheaders()
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


def test_nginx_refuses_bodies_over_the_pages_limit_and_big_sign_in_forms(stack) -> None:
    """nginx stores a body before proxying it: nobody, signed in or not, makes it store more
    than the page's own limit, and the sign-in form takes 16 KiB at most."""
    from web_admin.serving import max_body_bytes

    limit = max_body_bytes(stack["config"].admin.max_upload_mb)
    assert _status_of_headers_only(stack, "/users/new", limit + 1) == 413
    assert _status_of_headers_only(stack, "/login?next=/users/", 17 * 1024) == 413
    # the sign-in form itself passes, and a body within the limit reaches the page
    owner = Browser(stack["https"], OWNER, stack["ctx"])
    assert owner.login("admin", PW).status == 302
    token = re.findall(r'name="csrf_token" value="([^"]+)"', owner.request("GET", "/users/")[1])
    filler = "x" * (limit - 70 * 1024)
    resp, _ = owner.request("POST", "/policies/lockdown", {"csrf_token": token[0], "on": "0",
                                                           "filler": filler})  # fmt: skip
    assert resp.status == 302, resp.status  # the page's answer, not nginx's 413


def test_forwarded_headers_straight_to_waitress_are_ignored(stack) -> None:
    """Only the front on 127.0.0.1 is trusted: a client reaching waitress directly from
    another address cannot claim HTTPS or someone else's address."""
    direct = Browser(stack["admin"], ATTACKER, None)
    spoof = {"X-Forwarded-For": "10.1.1.1", "X-Forwarded-Proto": "https"}
    resp, _ = direct.request("GET", "/login", headers=spoof)
    assert resp.status == 200
    assert "Strict-Transport-Security" not in resp.headers
    assert all("Secure" not in c for c in resp.headers.get_all("Set-Cookie") or [])
    direct.login("admin", "wrong password here")
    with stack["db"].session() as s:
        assert {a.ip for a in s.scalars(select(LoginAttempt))} == {ATTACKER}


def test_tls12_offers_only_aead_suites_and_no_version(stack, tmp_path) -> None:
    openssl = need_tool("openssl")
    port = stack["https"]

    def handshake(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "127.0.0.1",
             *args],
            input="", capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    for weak in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES128-SHA256",
                 "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA", "AES128-SHA"):  # fmt: skip
        r = handshake("-tls1_2", "-cipher", weak)
        assert "Cipher is (NONE)" in r.stdout or r.returncode != 0, (weak, r.stdout[-400:])
        assert f"Cipher is {weak}" not in r.stdout
    for good in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"):
        r = handshake("-tls1_2", "-cipher", good)
        assert f"Cipher is {good}" in r.stdout, (good, r.stdout[-600:], r.stderr[-300:])
    r = handshake("-tls1_1")
    assert "Cipher is (NONE)" in r.stdout or r.returncode != 0
    owner = Browser(port, OWNER, stack["ctx"])
    resp, _ = owner.request("GET", "/nope-404")
    assert resp.headers["Server"] == "nginx"  # server_tokens off: no version number
