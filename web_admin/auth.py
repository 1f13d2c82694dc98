"""Owns sign-in: login/logout, server-side sessions, CSRF, roles, security headers, HTTPS."""

from __future__ import annotations

import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface

from . import accounts
from .common import audit, get_config, get_db, require_admin

bp = Blueprint("auth", __name__)

SESSION_COOKIE = "doorward_session"
LOGIN_CSRF_COOKIE = "doorward_login_csrf"
PUBLIC_ENDPOINTS = {"auth.login", "static"}
# what a viewer (read-only) or an account with a one-time password may still post
SELF_SERVICE = {"auth.logout", "auth.password"}

LOGIN_FAILED = (
    "Sign-in failed: wrong username or password, or too many attempts from this address "
    "(wait a minute before the next try)."
)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def _cookie_secure() -> bool:
    return request.is_secure


# fetched by the page's own script every few seconds: they do not count as activity
# (device.html reloads the camera picture every 4 s, as it fetches status.json)
POLLED_ENDPOINTS = frozenset({"device.status_json", "device.camera_frame"})

# pictures behind the login (snapshots, mailbox alert photos, enrollment photos, the camera):
# kept by no cache, shared or the browser's own
PRIVATE_IMAGE_CACHE = "private, no-store"


class HttpsAwareSessionInterface(SecureCookieSessionInterface):
    """The signed flash cookie, Secure whenever the request came over HTTPS.

    Flask writes that cookie after the after_request hooks have run, so _headers cannot add
    the flag to it; the interface itself has to."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(has_request_context() and request.is_secure) or super().get_cookie_secure(app)


def _load() -> Any:
    from flask import current_app

    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit and (request.content_length or 0) > limit:
        abort(413)  # refuse before reading a byte of the body
    g.account = accounts.load_session(
        get_db(),
        request.cookies.get(SESSION_COOKIE),
        get_config().admin,
        touch=request.endpoint not in POLLED_ENDPOINTS,  # an open tab never keeps a login alive
    )
    g.csrf_token = g.account.csrf_token if g.account else None
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS or not endpoint:  # no endpoint: a plain 404 follows
        return None
    if g.account is None:
        if request.method == "GET" and not request.path.endswith(".json"):
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(401)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
        if not hmac.compare_digest(sent.encode(), g.csrf_token.encode()):
            abort(400, "The form was stale or forged (CSRF token missing or wrong). Reload it.")
        if endpoint not in SELF_SERVICE:
            require_admin()
    if g.account.must_change_password and endpoint not in SELF_SERVICE:
        flash("Choose a new password: the one-time password only works once.", "warning")
        return redirect(url_for("auth.password"))
    return None


def _headers(response: Response) -> Response:
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h["X-Content-Type-Options"] = "nosniff"
    h["X-Frame-Options"] = "DENY"
    h["Referrer-Policy"] = "same-origin"
    h["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
    if request.is_secure:
        h["Strict-Transport-Security"] = "max-age=31536000"
        # every cookie (the flash cookie too) is Secure under HTTPS
        cookies = h.getlist("Set-Cookie")
        if cookies:
            h.setlist("Set-Cookie", [c if "; Secure" in c else c + "; Secure" for c in cookies])
    if response.mimetype in ("text/html", "application/json", "text/csv"):
        h["Cache-Control"] = "no-store"
    elif (response.mimetype or "").startswith("image/") and request.endpoint != "static":
        h["Cache-Control"] = PRIVATE_IMAGE_CACHE  # whatever send_file's max_age said
        h.pop("Expires", None)
    return response


def install(app: Flask) -> None:
    app.session_interface = HttpsAwareSessionInterface()
    app.before_request(_load)
    app.after_request(_headers)

    @app.context_processor
    def _ctx() -> dict[str, Any]:
        door = app.extensions["doorward"]["door"]
        return {
            "account": g.get("account"),
            "csrf_token": g.get("csrf_token"),
            "can_edit": g.get("account") is not None and g.account.role == "admin",
            "simulated": door is not None and getattr(door, "simulator", None) is not None,
            "device_name": app.extensions["doorward"]["config"].device.name,
        }


def safe_next(target: str | None) -> str | None:
    """`target` if it is a same-site relative path, else None.

    Browsers drop tab, CR and LF anywhere in a URL and strip leading/trailing spaces and
    controls, so `/\t/evil.com` is `//evil.com` to them: those characters are removed first,
    then only a path starting with exactly one "/" (no backslash, no scheme, no host) is kept.
    """
    if not target or len(target) > 2048:
        return None
    cleaned = "".join(c for c in target if c.isprintable() and not c.isspace())
    if not cleaned.startswith("/") or cleaned.startswith("//") or "\\" in cleaned:
        return None
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc:
        return None
    return cleaned


def _next_or_home(target: str | None) -> str:
    return safe_next(target) or url_for("dashboard.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    status = 200
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
            abort(400, "The login form was stale or forged (CSRF token missing). Reload it.")
        username = request.form.get("username", "").strip()
        result = accounts.attempt_login(
            get_db(),
            get_config().admin,
            username,
            request.form.get("password", ""),
            request.remote_addr or "-",
        )
        if result.ok:
            assert result.account_id is not None  # ok means an account was found
            # a new session id at every login; any session this browser had ends
            accounts.end_session(get_db(), request.cookies.get(SESSION_COOKIE))
            token = accounts.new_session(
                get_db(), result.account_id, request.remote_addr, request.user_agent.string
            )
            g.account = accounts.load_session(get_db(), token, get_config().admin)
            audit("login", username)
            resp = redirect(_next_or_home(request.args.get("next")))
            resp.set_cookie(
                SESSION_COOKIE,
                token,
                httponly=True,
                samesite="Lax",
                secure=_cookie_secure(),
                path="/",
            )
            resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
            return resp
        # one answer for an unknown user, a wrong password and a throttled client alike
        error, status = LOGIN_FAILED, 401
    # keep the browser's token: a second tab (or a favicon fetch) must not stale the first form
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if len(token) != 43:
        token = secrets.token_urlsafe(32)
    first = accounts.initial_password_path(get_config().data_dir)
    resp = Response(
        render_template(
            "login.html", error=error, login_csrf=token,
            first_password=str(first) if first.is_file() else None,
        ),
        status=status,
    )  # fmt: skip
    resp.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict", secure=_cookie_secure(),
        path="/login",
    )  # fmt: skip
    return resp


@bp.post("/logout")
def logout() -> Any:
    audit("logout", g.account.username)
    accounts.end_session(get_db(), request.cookies.get(SESSION_COOKIE))
    resp = redirect(url_for("auth.login"))
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@bp.route("/account/password", methods=["GET", "POST"])
def password() -> Any:
    error = None
    status = 400
    if request.method == "POST":
        current = request.form.get("current", "")
        new = request.form.get("new", "")
        # the login's throttles and accounting: a session's holder (a stolen cookie, a browser
        # left signed in) cannot use this form to guess the password itself
        check = accounts.attempt_login(
            get_db(), get_config().admin, g.account.username, current,
            request.remote_addr or "-", reauth=True,
        )  # fmt: skip
        if check.reason == "throttled":
            error = (
                "Too many wrong passwords from this address: wait "
                f"{check.retry_after_s} s before the next try."
            )
            status = 429
        elif not check.ok:
            error = "The current password is wrong."
        elif new != request.form.get("confirm", ""):
            error = "The new password and its confirmation differ."
        elif new == current:
            error = "The new password must differ from the current one."
        else:
            try:
                accounts.set_password(get_db(), g.account.username, new)
            except accounts.AccountError as exc:
                error = str(exc)
            else:
                audit("password_changed", g.account.username)
                # the one-time password is spent: its file goes
                accounts.initial_password_path(get_config().data_dir).unlink(missing_ok=True)
                # every session ended with the password change: sign in again
                resp = redirect(url_for("auth.login"))
                resp.delete_cookie(SESSION_COOKIE, path="/")
                flash("Password changed. Sign in with the new password.", "ok")
                return resp
    return render_template("password.html", error=error), status if error else 200


@bp.get("/admins")
def admins() -> Any:
    require_admin()
    return render_template("admins.html", accounts=accounts.list_accounts(get_db()))


@bp.post("/admins")
def admin_add() -> Any:
    form = request.form
    try:
        accounts.create_account(
            get_db(), form.get("username", "").strip(), form.get("password", ""),
            form.get("role", "viewer"), must_change=True,
        )  # fmt: skip
    except accounts.AccountError as exc:
        flash(str(exc), "error")
    else:
        audit("admin_account_created", form.get("username"), role=form.get("role"))
        flash(f"Account {form.get('username')} added; it must change its password.", "ok")
    return redirect(url_for("auth.admins"))


@bp.post("/admins/<username>")
def admin_update(username: str) -> Any:
    action = request.form.get("action")
    try:
        if action == "disable":
            if username == g.account.username:
                raise accounts.AccountError("you cannot disable your own account")
            accounts.update_account(get_db(), username, active=False)
        elif action == "enable":
            accounts.update_account(get_db(), username, active=True)
        elif action in ("role_admin", "role_viewer"):
            accounts.update_account(get_db(), username, role=action.removeprefix("role_"))
        else:
            abort(400, f"unknown action {action!r}")
    except accounts.AccountError as exc:
        flash(str(exc), "error")
    else:
        audit(f"admin_account_{action}", username)
        flash(f"Account {username}: {action.replace('_', ' ')} done.", "ok")
    return redirect(url_for("auth.admins"))
