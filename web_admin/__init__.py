"""Owns the admin web application factory (Flask); blueprints live beside it."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template_string

_PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Doorward</title></head>
<body><h1>Doorward</h1>
<p>Door <strong>{{ device }}</strong>: {{ status.state if status else "not running here" }},
{{ "locked" if status and status.locked else "unlocked" if status else "" }}.</p>
<p>The admin page is being built; <a href="/status.json">status.json</a> shows the door.</p>
</body></html>"""


def create_app(
    config: Any = None, db: Any = None, door: Any = None, test_config: dict | None = None
) -> Flask:
    """Application factory: collaborators are handed in, never built at import time."""
    app = Flask(__name__)
    if test_config:
        app.config.update(test_config)
    app.extensions["doorward"] = {"config": config, "db": db, "door": door}

    @app.get("/")
    def index() -> str:
        status = door.status() if door is not None else None
        device = config.device.id if config is not None else "-"
        return render_template_string(_PLACEHOLDER, device=device, status=status)

    @app.get("/status.json")
    def status_json() -> Any:
        return jsonify(door.status() if door is not None else {"running": False})

    return app
