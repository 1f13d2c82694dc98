"""Helpers for the alerts tests: configs for loopback peers and committed alerts."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import select

from appliance.alerts.outbox import enqueue_alert
from appliance.config import Config, parse_config
from appliance.store.db import Database
from appliance.store.models import AccessEvent, OutboxAlert, new_uuid, utcnow
from appliance.store.models_alerts import AlertDelivery
from tests.support.loopback import TwilioServer
from tests.support.sim_modem import SimModem

TOKEN_ENV = "DOORWARD_TEST_TWILIO_TOKEN"


def serve_twilio(monkeypatch: Any) -> Iterator[TwilioServer]:
    """The Twilio-shaped server on loopback, its auth token in TOKEN_ENV: for a fixture to
    `yield from`."""
    server = TwilioServer(token="test-token").start()
    monkeypatch.setenv(TOKEN_ENV, server.token)
    try:
        yield server
    finally:
        server.mode = "ok"
        server.stop()


def jpeg_bytes(seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


def make_config(tmp_path: Path, **alerts: Any) -> Config:
    data: dict[str, Any] = {
        "device": {"id": "door-t", "name": "Test door", "data_dir": str(tmp_path)},
        "alerts": {
            "probe_enabled": False,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.2,
            "poll_interval_s": 0.05,
            **alerts,
        },
    }
    return parse_config(data)


def email_section(port: int, **kw: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "door@example.test",
        "to": ["owner@example.test"],
        "timeout_s": 2,
        **kw,
    }


def twilio_section(server: TwilioServer, **kw: Any) -> dict[str, Any]:
    return {
        "account_sid": server.account_sid,
        "token": {"env": TOKEN_ENV},
        "from": "+15550000001",
        "to": ["+15550000002"],
        "api_base": server.base,
        "timeout_s": 1,
        **kw,
    }


def gsm_section(modem: SimModem, **kw: Any) -> dict[str, Any]:
    return {"port": modem.port, "to": ["+15550000003"], "timeout_s": 1, **kw}


def add_alert(
    outbox_db: Database, data_dir: Path, kind: str = "denied_face", *, photo: bool = True, **kw: Any
) -> str:
    """An access event plus its outbox alert, committed together like the door does."""
    snapshot = None
    if photo:
        snapshot = f"snapshots/{new_uuid()}.jpg"
        (data_dir / snapshot).parent.mkdir(parents=True, exist_ok=True)
        (data_dir / snapshot).write_bytes(jpeg_bytes())
    with outbox_db.session() as s:
        event = AccessEvent(
            id=new_uuid(),
            device_id="door-t",
            ts=kw.pop("ts", None) or utcnow(),
            kind=kind,
            user_number=kw.pop("user_number", 12),
            distance=kw.pop("distance", 0.71),
            snapshot_path=snapshot,
        )
        s.add(event)
        s.flush()
        alert: OutboxAlert = enqueue_alert(s, event=event, **kw)
        return alert.id


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def states(outbox_db: Database) -> dict[str, dict[str, str]]:
    with outbox_db.session() as s:
        out: dict[str, dict[str, str]] = {}
        for a in s.scalars(select(OutboxAlert)):
            out[a.id] = {"alert": a.state}
        for d in s.scalars(select(AlertDelivery)):
            out[d.alert_id][d.channel] = d.state
        return out


def twilio_refuses(server: TwilioServer, statuses: dict[str, list[int]]) -> None:
    """The Twilio-shaped server answers the next statuses for a number, then as usual."""
    from urllib.parse import parse_qs

    handle = server._handle

    def refusing(h, body):  # type: ignore[no-untyped-def]
        to = parse_qs(body).get("To", [""])[0]
        left = statuses.get(to)
        if left:
            status = left.pop(0)
            code = 21211 if status == 400 else 20503
            return server._json(h, status, {"code": code, "message": "refused", "status": status})
        return handle(h, body)

    server._handle = refusing  # type: ignore[method-assign]
