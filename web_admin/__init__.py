"""Owns the admin web application factory (Flask); blueprints live beside it."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Flask is imported when an app is built, not when the CLI lists commands
    from flask import Flask

LOOPBACK = {"127.0.0.1", "::1"}


class LoopbackProxyFix:
    """Honour one proxy's X-Forwarded-* headers, but only from loopback (the nginx front)."""

    def __init__(self, app: Any) -> None:
        from werkzeug.middleware.proxy_fix import ProxyFix

        self.app = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1, x_host=1)

    def __call__(self, environ: dict, start_response: Any) -> Any:
        if environ.get("REMOTE_ADDR") in LOOPBACK and environ.get("HTTP_X_FORWARDED_PROTO"):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def create_app(
    config: Any = None,
    db: Any = None,
    door: Any = None,
    test_config: dict | None = None,
    *,
    local_db: Any = None,
    sync: Any = None,
) -> Flask:
    """Application factory: collaborators are handed in, never built at import time.

    config: appliance.config.Config (default: the embedded default); db: appliance.store.db
    Database (default: the device replica, migrated); door: a running appliance.door.Door
    when the page is served beside the door loop (enables the door panel and camera capture).
    """
    from flask import Flask, render_template
    from werkzeug.exceptions import HTTPException

    from appliance.config import Config

    from . import (
        alerts,
        audit_log,
        auth,
        dashboard,
        device,
        events,
        policies,
        present,
        remote,
        users,
    )
    from .accounts import ensure_initial_admin
    from .common import fmt_dt, input_dt

    if config is None:
        config = Config()
    if db is None:
        from appliance.store.central import open_local_replica

        db = open_local_replica(config)
    app = Flask(__name__)
    secret = config.admin.secret_key.resolve("admin.secret_key") or secrets.token_urlsafe(32)
    app.config.update(
        # the signed Flask cookie only carries flash messages; the login lives server-side
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME="doorward_flash",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=int(config.admin.max_upload_mb * 1024 * 1024),
        MAX_FORM_MEMORY_SIZE=int(config.admin.max_upload_mb * 1024 * 1024),
        BOOTSTRAP_ADMIN=True,
    )
    if test_config:
        app.config.update(test_config)
    if config.admin.proxy_from_loopback:
        app.wsgi_app = LoopbackProxyFix(app.wsgi_app)  # type: ignore[method-assign]
    app.extensions["doorward"] = {
        "config": config,
        "db": db,
        "door": door,
        "local_db": local_db if local_db is not None else (door.db if door is not None else db),
        "sync": sync,
    }
    if app.config["BOOTSTRAP_ADMIN"]:
        from .accounts import initial_password_path

        ensure_initial_admin(db, password_file=initial_password_path(config.data_dir))

    auth.install(app)
    for bp in (
        auth.bp,
        dashboard.bp,
        users.bp,
        events.bp,
        alerts.bp,
        device.bp,
        audit_log.bp,
        remote.bp,
        policies.bp,
    ):
        app.register_blueprint(bp)
    app.jinja_env.filters["dt"] = fmt_dt
    app.jinja_env.filters["dt_input"] = input_dt
    present.install(app)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return (
            render_template("error.html", code=exc.code, name=exc.name, text=exc.description),
            exc.code or 500,
        )

    return app
