"""Admin accounts: first run, argon2id, server-side sessions, throttle and lock, roles, CSRF."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from types import SimpleNamespace

import numpy as np
from sqlalchemy import select, update

from appliance.store.models import utcnow
from appliance.store.models_admin import AdminAccount, AdminSession, AuditEntry, LoginAttempt
from web_admin import accounts as acc_mod
from web_admin.auth import SESSION_COOKIE

from .conftest import ADMIN_PW, VIEWER_PW, csrf_of, login


def _cookie(client) -> str | None:
    c = client.get_cookie(SESSION_COOKIE)
    return c.value if c else None


def test_first_run_with_env_creates_admin(admin_config, db) -> None:
    out: list[str] = []
    made = acc_mod.ensure_initial_admin(db, {"DOORWARD_ADMIN_PASSWORD": ADMIN_PW}, out.append)
    assert made == "admin"
    acc = acc_mod.get_account(db, "admin")
    assert acc.role == "admin" and not acc.must_change_password
    assert ADMIN_PW not in out[0]
    # a second run finds the account and leaves it alone
    assert acc_mod.ensure_initial_admin(db, {}, out.append) is None
    assert len(out) == 1


def test_first_run_without_env_writes_one_time_password_to_a_0600_file(
    admin_config,
    db,
    capsys,
    caplog,
) -> None:
    import os
    import stat

    from web_admin import create_app

    app = create_app(config=admin_config, db=db)  # bootstraps the first admin
    pw_file = acc_mod.initial_password_path(admin_config.data_dir)
    assert stat.S_IMODE(os.stat(pw_file).st_mode) == 0o600
    otp = pw_file.read_text().strip()
    assert len(otp) >= 12
    c = app.test_client()
    page = c.get("/login").text
    assert str(pw_file) in page and otp not in page  # the login page says where, not what
    assert login(c, "admin", otp).status_code == 302
    r = c.get("/users/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/account/password")
    page = c.get("/account/password")
    r = c.post(
        "/account/password",
        data={"csrf_token": csrf_of(page.text), "current": otp, "new": "a much better one",
              "confirm": "a much better one"},
    )  # fmt: skip
    assert r.status_code == 302
    assert not pw_file.exists()  # spent
    # the password change ended the session: sign in again with the new password
    assert c.get("/users/").status_code == 302
    assert login(c, "admin", "a much better one").status_code == 302
    assert c.get("/users/").status_code == 200
    seen = capsys.readouterr()
    assert otp not in seen.out + seen.err and otp not in caplog.text  # never printed or logged
    assert str(pw_file) in seen.out


def test_passwords_are_argon2id_at_least_owasp(db, accounts) -> None:
    h = acc_mod.get_account(db, "admin").password_hash
    assert h.startswith("$argon2id$")
    params = dict(p.split("=") for p in h.split("$")[3].split(","))
    assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2 and int(params["p"]) >= 1
    assert ADMIN_PW not in h


def test_login_gives_new_session_id_and_logout_refuses_old_cookie(app, db) -> None:
    c = app.test_client()
    c.set_cookie(SESSION_COOKIE, "attacker-chosen-value")
    assert login(c).status_code == 302
    first = _cookie(c)
    assert first and first != "attacker-chosen-value"
    with db.session() as s:
        stored = list(s.scalars(select(AdminSession.id_hash)))
    assert first not in stored  # only a hash is kept
    assert login(c).status_code == 302
    second = _cookie(c)
    assert second != first
    assert c.get("/").status_code == 200
    r = c.post("/logout", data={"csrf_token": csrf_of(c.get("/").text)})
    assert r.status_code == 302
    # replay the old cookie: refused
    c.set_cookie(SESSION_COOKIE, second)
    r = c.get("/users/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    c.set_cookie(SESSION_COOKIE, first)
    assert c.get("/users/").status_code == 302


def test_idle_session_expires(app, db, client) -> None:
    assert client.get("/").status_code == 200
    idle = app.extensions["doorward"]["config"].admin.session_idle_s
    with db.session() as s:
        s.execute(update(AdminSession).values(last_seen_at=utcnow() - timedelta(seconds=idle + 5)))
    r = client.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    with db.session() as s:
        assert s.scalar(select(AdminSession.id_hash)) is None


def test_the_device_pages_own_polling_never_keeps_a_session_alive(app, db, client) -> None:
    """device.html fetches status.json and reloads camera.jpg every few seconds: an unattended
    tab must still reach the idle timeout; a page the person opens counts as activity."""
    frame = np.zeros((120, 160, 3), np.uint8)
    app.extensions["doorward"]["door"] = SimpleNamespace(
        camera=SimpleNamespace(read=lambda: frame), simulator=None
    )
    earlier = utcnow() - timedelta(seconds=60)
    with db.session() as s:
        s.execute(update(AdminSession).values(last_seen_at=earlier))

    def last_seen():
        with db.session() as s:
            return s.scalars(select(AdminSession.last_seen_at)).one()

    with client.get("/device/camera.jpg?t=123") as r:
        assert r.status_code == 200
    assert last_seen() == earlier, "the camera picture's reload touched the session"
    app.extensions["doorward"]["door"] = None  # status.json of a page served without the door
    assert client.get("/device/status.json").status_code == 200
    assert last_seen() == earlier, "status.json touched the session"
    assert client.get("/events").status_code == 200  # a page opened by the person
    assert last_seen() > earlier


def _from(app, ip: str):
    """A test client whose requests come from `ip`."""
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = ip
    return c


def test_a_flood_from_one_address_never_locks_the_owner_out(app, admin_config, db) -> None:
    from web_admin import create_app

    attacker = _from(app, "10.0.0.66")
    for _ in range(admin_config.admin.login_ip_limit + 5):
        assert login(attacker, "admin", "wrong password!").status_code == 401
    # the attacker's own address is now refused, even with the right password ...
    assert login(attacker).status_code == 401
    # ... but the owner, from another address, on this worker or another, signs in at once
    assert login(_from(app, "10.0.0.7")).status_code == 302
    other = create_app(config=admin_config, db=db, test_config={"BOOTSTRAP_ADMIN": False})
    assert login(_from(other, "10.0.0.8")).status_code == 302
    with db.session() as s:
        acc = s.scalars(select(AdminAccount).where(AdminAccount.username == "admin")).one()
        assert acc.locked_until is None


def test_per_account_and_client_delay_doubles_and_ends(db, accounts, admin_config) -> None:
    settings = admin_config.admin
    t0 = utcnow()
    k = settings.login_max_failures
    for i in range(k):
        r = acc_mod.attempt_login(db, settings, "admin", "bad", "10.1.1.1", now=t0)
        assert r.reason == "bad_credentials", i
    assert acc_mod.pair_delay_s(k, settings) == 2.0
    assert acc_mod.pair_delay_s(k + 1, settings) == 4.0
    assert acc_mod.pair_delay_s(k + 40, settings) == settings.login_lockout_s
    # within the delay this client is refused even with the right password (and it counts)
    r = acc_mod.attempt_login(db, settings, "admin", ADMIN_PW, "10.1.1.1", now=t0)
    assert (r.ok, r.reason) == (False, "throttled")
    # another client is not delayed at all
    assert acc_mod.attempt_login(db, settings, "admin", ADMIN_PW, "10.1.1.2", now=t0).ok
    # once the (now doubled) delay has passed, the first client gets its try
    later = t0 + timedelta(seconds=acc_mod.pair_delay_s(k + 1, settings) + 0.5)
    assert acc_mod.attempt_login(db, settings, "admin", ADMIN_PW, "10.1.1.1", now=later).ok
    # and a success clears its delay
    r = acc_mod.attempt_login(db, settings, "admin", "bad", "10.1.1.1", now=later)
    assert r.reason == "bad_credentials"


def test_failures_from_one_address_are_throttled(app, admin_config, db) -> None:
    c = _from(app, "10.2.2.2")
    for i in range(admin_config.admin.login_ip_limit):
        assert login(c, f"nobody{i}", "wrong password!").status_code == 401
    r = acc_mod.attempt_login(db, admin_config.admin, "admin", ADMIN_PW, "10.2.2.2")
    assert (r.ok, r.reason) == (False, "throttled")
    with db.session() as s:
        assert (
            s.query(LoginAttempt).filter_by(success=False).count()
            >= admin_config.admin.login_ip_limit
        )


def test_the_password_form_is_throttled_like_the_login(app, admin_config, db) -> None:
    """A session's holder (a stolen cookie, a browser left signed in) cannot guess the
    current password on /account/password: the login's throttles count its failures."""
    k = admin_config.admin.login_max_failures
    c = _from(app, "10.4.4.4")
    assert login(c).status_code == 302
    token = csrf_of(c.get("/account/password").text)

    def change(current: str):
        return c.post("/account/password", data={
            "csrf_token": token, "current": current, "new": "x", "confirm": "y",
        })  # fmt: skip

    for i in range(k):
        r = change(f"guess number {i}")
        assert r.status_code == 400 and "current password is wrong" in r.text, i
    # the next try is refused unchecked, even with the right password (nothing is learnt)
    r = change(ADMIN_PW)
    assert r.status_code == 429 and "Too many wrong passwords" in r.text
    assert "confirmation differ" not in r.text and "current password is wrong" not in r.text
    # ... and that address's next sign-in waits as well; the owner elsewhere does not
    assert acc_mod.attempt_login(db, admin_config.admin, "admin", ADMIN_PW, "10.4.4.4").reason \
        == "throttled"  # fmt: skip
    with db.session() as s:  # counted as failed logins (the refused ones too)
        assert s.query(LoginAttempt).filter_by(ip="10.4.4.4", success=False).count() == k + 2
        assert s.scalars(select(AdminAccount.failed_logins).filter_by(username="admin")).one() == k
    assert login(_from(app, "10.4.4.5")).status_code == 302


def test_the_password_form_still_changes_the_password(app, db) -> None:
    c = _from(app, "10.4.4.6")
    assert login(c).status_code == 302
    with db.session() as s:
        signed_in_at = s.scalars(
            select(AdminAccount.last_login_at).filter_by(username="admin")
        ).one()
    page = c.get("/account/password")
    r = c.post("/account/password", data={
        "csrf_token": csrf_of(page.text), "current": ADMIN_PW, "new": "x", "confirm": "y",
    })  # fmt: skip
    assert r.status_code == 400 and "confirmation differ" in r.text  # the right one passes
    new = "another lantern river 9"
    r = c.post("/account/password", data={
        "csrf_token": csrf_of(page.text), "current": ADMIN_PW, "new": new, "confirm": new,
    })  # fmt: skip
    assert r.status_code == 302
    with db.session() as s:  # confirming the password is no new sign-in
        assert s.scalars(select(AdminAccount.last_login_at).filter_by(username="admin")).one() \
            == signed_in_at  # fmt: skip
    assert login(_from(app, "10.4.4.6"), "admin", new).status_code == 302


def test_one_ipv6_network_is_one_client_for_the_throttles(db, accounts, admin_config) -> None:
    """Every address of an IPv6 /64 belongs to the same client: rotating through them buys no
    new budget. Another /64, and IPv4 addresses, are counted apart."""
    settings = admin_config.admin
    t0 = utcnow()
    reasons = [
        acc_mod.attempt_login(db, settings, "admin", "guess", f"2001:db8:1:2::{h:x}", now=t0).reason
        for h in range(1, 3 * settings.login_ip_limit)
    ]
    assert reasons.count("bad_credentials") == settings.login_max_failures
    assert set(reasons[settings.login_max_failures :]) == {"throttled"}
    late = acc_mod.attempt_login(db, settings, "admin", ADMIN_PW, "2001:db8:1:2:ffff::1", now=t0)
    assert late.reason == "throttled"
    assert acc_mod.attempt_login(db, settings, "admin", ADMIN_PW, "2001:db8:1:3::1", now=t0).ok
    assert acc_mod.attempt_login(db, settings, "admin", ADMIN_PW, "10.5.5.5", now=t0).ok
    assert acc_mod.client_key("2001:DB8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64"
    assert acc_mod.client_key("fe80::1%eth0") == "fe80::/64"
    assert acc_mod.client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert acc_mod.client_key("192.0.2.7") == "192.0.2.7"
    assert acc_mod.client_key("-") == "-"


def test_a_username_cannot_forge_log_lines(app, caplog) -> None:
    """The name typed at the login reaches the log quoted: its newline starts no line."""
    import logging

    forged = "x\n2026-01-01 09:00:01 INFO web_admin event=admin_login username=admin"
    c = app.test_client()
    with caplog.at_level(logging.INFO, logger="web_admin"):
        assert login(c, forged, "nope").status_code == 401
        assert login(c, "admin", "nope either").status_code == 401
        assert login(c).status_code == 302
    lines = [r.getMessage() for r in caplog.records if r.name == "web_admin.accounts"]
    assert len(lines) == 3 and not any("\n" in line or "\r" in line for line in lines), lines
    assert "username='admin' ip='127.0.0.1'" in lines[-1], lines[-1]


def _answer(html: str) -> str:
    """The login page minus its per-request CSRF token."""
    return re.sub(r'name="csrf_token" value="[^"]+"', "", html)


def test_unknown_wrong_and_throttled_read_the_same(app, admin_config) -> None:
    from web_admin.auth import LOGIN_FAILED

    c = _from(app, "10.3.3.3")
    unknown = login(c, "nobody", "whatever password")
    wrong = login(c, "admin", "whatever password")
    for _ in range(admin_config.admin.login_ip_limit):
        login(c, "admin", "whatever password")
    throttled = login(c)  # the right password, but this address is throttled
    answers = [unknown, wrong, throttled]
    assert {r.status_code for r in answers} == {401}
    assert len({_answer(r.text) for r in answers}) == 1
    assert "Retry-After" not in throttled.headers
    assert html.escape(LOGIN_FAILED) in wrong.text or LOGIN_FAILED in wrong.text


def test_viewer_reads_but_cannot_change(app, db) -> None:
    c = app.test_client()
    assert login(c, "viewer", VIEWER_PW).status_code == 302
    for url in ("/", "/users/", "/events", "/alerts", "/device/", "/audit"):
        assert c.get(url).status_code == 200, url
    page = c.get("/users/")
    assert "Add user" not in page.text
    r = c.post("/users/new", data={"csrf_token": csrf_of(page.text), "number": "5"})
    assert r.status_code == 403
    assert c.get("/admins").status_code == 403
    # a viewer may still log out
    assert c.post("/logout", data={"csrf_token": csrf_of(page.text)}).status_code == 302


def test_every_post_needs_the_csrf_token(client, token) -> None:
    assert client.post("/users/1/active", data={"active": "0"}).status_code == 400
    assert (
        client.post("/users/1/active", data={"active": "0", "csrf_token": "x"}).status_code == 400
    )
    assert client.post("/logout").status_code == 400
    # the right token passes the check (the user does not exist: 404)
    assert client.post("/users/1/active", data={"csrf_token": token}).status_code == 404


def test_login_form_needs_its_csrf_token(app) -> None:
    c = app.test_client()
    r = c.post("/login", data={"username": "admin", "password": ADMIN_PW})
    assert r.status_code == 400


def test_open_redirect_after_login_is_refused(app) -> None:
    c = app.test_client()
    page = c.get("/login?next=//evil.example/")
    r = c.post(
        "/login?next=//evil.example/",
        data={"csrf_token": csrf_of(page.text), "username": "admin", "password": ADMIN_PW},
    )
    assert r.headers["Location"] == "/"


def test_logins_and_logouts_are_audited(client, db, token) -> None:
    client.post("/logout", data={"csrf_token": token})
    with db.session() as s:
        actions = [a for (a,) in s.execute(select(AuditEntry.action).order_by(AuditEntry.id))]
    assert actions == ["login", "logout"]


def test_admin_user_cli(admin_config, db, monkeypatch, capsys) -> None:
    from appliance.cli import main

    url = db.url
    monkeypatch.setenv("DOORWARD_NEW_PASSWORD", "cli password 123")
    assert main(["--db", url, "admin-user", "add", "boss"]) == 0
    assert main(["--db", url, "admin-user", "add", "ops", "--role", "viewer"]) == 0
    assert acc_mod.get_account(db, "ops").role == "viewer"
    assert main(["--db", url, "admin-user", "role", "ops", "admin"]) == 0
    assert main(["--db", url, "admin-user", "disable", "ops"]) == 0
    assert not acc_mod.get_account(db, "ops").active
    assert main(["--db", url, "admin-user", "add", "ops"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["--db", url, "admin-user", "list"]) == 0
    assert "ops\tadmin\tdisabled" in capsys.readouterr().out
    monkeypatch.setenv("DOORWARD_NEW_PASSWORD", "short")
    assert main(["--db", url, "admin-user", "passwd", "ops"]) == 2
    assert "password must be 10 to 256" in capsys.readouterr().err


def test_last_admin_cannot_be_removed(db, accounts) -> None:
    import pytest

    with pytest.raises(acc_mod.AccountError, match="last active admin"):
        acc_mod.delete_account(db, "admin")
    with pytest.raises(acc_mod.AccountError, match="last active admin"):
        acc_mod.update_account(db, "admin", role="viewer")
