"""Admin accounts: first run, argon2id, server-side sessions, throttle and lock, roles, CSRF."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from appliance.store.models import utcnow
from appliance.store.models_admin import AdminAccount, AdminSession, AuditEntry, LoginAttempt
from web_admin import accounts as acc_mod
from web_admin.auth import SESSION_COOKIE

from .conftest import ADMIN_PW, csrf_of, login


def _cookie(client) -> str | None:  # noqa: ANN001
    c = client.get_cookie(SESSION_COOKIE)
    return c.value if c else None


def test_first_run_with_env_creates_admin(config, db) -> None:  # noqa: ANN001
    out: list[str] = []
    made = acc_mod.ensure_initial_admin(db, {"DOORWARD_ADMIN_PASSWORD": ADMIN_PW}, out.append)
    assert made == "admin"
    acc = acc_mod.get_account(db, "admin")
    assert acc.role == "admin" and not acc.must_change_password
    assert ADMIN_PW not in out[0]
    # a second run finds the account and leaves it alone
    assert acc_mod.ensure_initial_admin(db, {}, out.append) is None
    assert len(out) == 1


def test_first_run_without_env_prints_one_time_password_that_must_be_changed(
    config,
    db,  # noqa: ANN001
) -> None:
    from web_admin import create_app

    out: list[str] = []
    acc_mod.ensure_initial_admin(db, {}, out.append)
    otp = out[0].split("one-time password ")[1].split()[0]
    assert len(otp) >= 12
    app = create_app(config=config, db=db, test_config={"BOOTSTRAP_ADMIN": False})
    c = app.test_client()
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
    # the password change ended the session: sign in again with the new password
    assert c.get("/users/").status_code == 302
    assert login(c, "admin", "a much better one").status_code == 302
    assert c.get("/users/").status_code == 200


def test_passwords_are_argon2id_at_least_owasp(db, accounts) -> None:  # noqa: ANN001
    h = acc_mod.get_account(db, "admin").password_hash
    assert h.startswith("$argon2id$")
    params = dict(p.split("=") for p in h.split("$")[3].split(","))
    assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2 and int(params["p"]) >= 1
    assert ADMIN_PW not in h


def test_login_gives_new_session_id_and_logout_refuses_old_cookie(app, db) -> None:  # noqa: ANN001
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


def test_idle_session_expires(app, db, client) -> None:  # noqa: ANN001
    assert client.get("/").status_code == 200
    idle = app.extensions["doorward"]["config"].admin.session_idle_s
    with db.session() as s:
        s.execute(update(AdminSession).values(last_seen_at=utcnow() - timedelta(seconds=idle + 5)))
    r = client.get("/")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    with db.session() as s:
        assert s.scalar(select(AdminSession.id_hash)) is None


def test_repeated_failures_lock_the_account_for_every_worker(app, config, db) -> None:  # noqa: ANN001
    from web_admin import create_app

    c = app.test_client()
    for _ in range(config.admin.login_max_failures):
        assert login(c, "admin", "wrong password!").status_code == 401
    with db.session() as s:
        acc = s.scalars(select(AdminAccount).where(AdminAccount.username == "admin")).one()
        assert acc.locked_until is not None and acc.locked_until > utcnow()
    # even the right password is refused while locked, also by another worker on the same DB
    r = login(c)
    assert r.status_code == 429 and "locked" in r.text
    other = create_app(config=config, db=db, test_config={"BOOTSTRAP_ADMIN": False})
    assert login(other.test_client()).status_code == 429
    # the lock ends after login_lockout_s
    with db.session() as s:
        s.execute(update(AdminAccount).values(locked_until=utcnow() - timedelta(seconds=1)))
    assert login(c).status_code == 302


def test_failures_from_one_address_are_throttled(app, config, db) -> None:  # noqa: ANN001
    c = app.test_client()
    for i in range(config.admin.login_ip_limit):
        assert login(c, f"nobody{i}", "wrong password!").status_code == 401
    r = login(c)
    assert r.status_code == 429 and "Too many" in r.text
    with db.session() as s:
        assert s.query(LoginAttempt).filter_by(success=False).count() >= config.admin.login_ip_limit


def test_unknown_user_and_wrong_password_read_the_same(app) -> None:  # noqa: ANN001
    c = app.test_client()
    a = login(c, "nobody", "whatever password")
    b = login(c, "admin", "whatever password")
    assert a.status_code == b.status_code == 401
    assert "Wrong username or password" in a.text and "Wrong username or password" in b.text


def test_viewer_reads_but_cannot_change(app, db) -> None:  # noqa: ANN001
    c = app.test_client()
    assert login(c, "viewer", "viewer password 1").status_code == 302
    for url in ("/", "/users/", "/events", "/alerts", "/device/", "/audit"):
        assert c.get(url).status_code == 200, url
    page = c.get("/users/")
    assert "Add user" not in page.text
    r = c.post("/users/new", data={"csrf_token": csrf_of(page.text), "number": "5"})
    assert r.status_code == 403
    assert c.get("/admins").status_code == 403
    # a viewer may still log out
    assert c.post("/logout", data={"csrf_token": csrf_of(page.text)}).status_code == 302


def test_every_post_needs_the_csrf_token(client, token) -> None:  # noqa: ANN001
    assert client.post("/users/1/active", data={"active": "0"}).status_code == 400
    assert (
        client.post("/users/1/active", data={"active": "0", "csrf_token": "x"}).status_code == 400
    )
    assert client.post("/logout").status_code == 400
    # the right token passes the check (the user does not exist: 404)
    assert client.post("/users/1/active", data={"csrf_token": token}).status_code == 404


def test_login_form_needs_its_csrf_token(app) -> None:  # noqa: ANN001
    c = app.test_client()
    r = c.post("/login", data={"username": "admin", "password": ADMIN_PW})
    assert r.status_code == 400


def test_open_redirect_after_login_is_refused(app) -> None:  # noqa: ANN001
    c = app.test_client()
    page = c.get("/login?next=//evil.example/")
    r = c.post(
        "/login?next=//evil.example/",
        data={"csrf_token": csrf_of(page.text), "username": "admin", "password": ADMIN_PW},
    )
    assert r.headers["Location"] == "/"


def test_logins_and_logouts_are_audited(client, db, token) -> None:  # noqa: ANN001
    client.post("/logout", data={"csrf_token": token})
    with db.session() as s:
        actions = [a for (a,) in s.execute(select(AuditEntry.action).order_by(AuditEntry.id))]
    assert actions == ["login", "logout"]


def test_admin_user_cli(config, db, monkeypatch, capsys) -> None:  # noqa: ANN001
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


def test_last_admin_cannot_be_removed(db, accounts) -> None:  # noqa: ANN001
    import pytest

    with pytest.raises(acc_mod.AccountError, match="last active admin"):
        acc_mod.delete_account(db, "admin")
    with pytest.raises(acc_mod.AccountError, match="last active admin"):
        acc_mod.update_account(db, "admin", role="viewer")
