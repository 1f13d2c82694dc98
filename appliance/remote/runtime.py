"""Owns the wiring of `doorward run`'s outward parts: the MQTT publisher, Home Assistant
discovery and commands, and the SMS command reader, all around one RemoteControl."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from appliance.config import Config
from appliance.store.db import Database

log = logging.getLogger(__name__)

EXTRA_STATE_TTL_S = 10.0  # the queue depth and sync lag are read from the database this often


def user_names(db: Database) -> Callable[[int], str | None]:
    from sqlalchemy import select

    from appliance.store.models import User

    def name(number: int) -> str | None:
        with db.session() as s:
            return s.scalar(select(User.name).where(User.number == number))

    return name


def db_state(db: Database, with_sync: bool) -> Callable[[], dict[str, Any]]:
    """Alert-queue depth and sync lag, read at most every EXTRA_STATE_TTL_S.

    The depth leaves silent kinds (duress) out: it is published (MQTT state, Home Assistant's
    "Alerts waiting"), and a 0 -> 1 at a plain-looking grant would tell of the duress code."""
    from sqlalchemy import func, select

    from appliance.publish.discovery import SILENT_KINDS
    from appliance.store.models import OutboxAlert

    cache: dict[str, Any] = {}
    at = [float("-inf")]

    def read() -> dict[str, Any]:
        now = time.monotonic()
        if now - at[0] < EXTRA_STATE_TTL_S:
            return cache
        with db.session() as s:
            pending = s.scalar(
                select(func.count())
                .select_from(OutboxAlert)
                .where(OutboxAlert.state == "pending", OutboxAlert.kind.not_in(SILENT_KINDS))
            )
        cache["alerts_pending"] = int(pending or 0)
        if with_sync:
            from appliance.store.sync import sync_lag_s

            cache["sync_lag_s"] = sync_lag_s(db)
        at[0] = now
        return cache

    return read


def build_control(config: Config, door: Any, db: Database, *, with_sync: bool) -> Any:
    from appliance.door.remote import RemoteDoor
    from appliance.security import pin_hasher

    from .codes import CodeBook, Throttle
    from .control import RemoteControl

    r = config.remote
    remote_door = RemoteDoor(door, extra_state=db_state(db, with_sync))
    codes = CodeBook(db, pin_hasher(config, db), config.device.id, max_skew_s=r.max_skew_s)
    throttle = Throttle(limit=r.attempts_per_minute, window_s=60.0, fail_limit=r.fail_limit,
                        fail_window_s=r.fail_window_s, block_s=r.block_s)  # fmt: skip
    mqtt = config.mqtt.enabled and config.mqtt.homeassistant

    def where(path: str | None) -> str:
        if not path:
            return "no photo (the camera did not answer)"
        also = "; sent to Home Assistant (Latest snapshot)" if mqtt else ""
        return f"saved on the door as {path} (admin page, Events){also}"

    return RemoteControl(remote_door, db, codes, throttle=throttle, describe_snapshot=where)


def start_outward(config: Config, door: Any, db: Database, parts: Any, *, with_sync: bool) -> None:
    """Start what talks to the outside besides alerts, adding each to `parts` (stopped in
    reverse): MQTT (events, state, Home Assistant, commands) and SMS commands."""
    m, r = config.mqtt, config.remote
    sms = r.sms_commands and config.alerts.gsm is not None and config.alerts.gsm.enabled
    control = None
    if (m.enabled and m.commands) or sms:
        control = build_control(config, door, db, with_sync=with_sync)
    if m.enabled:
        from appliance.door.remote import RemoteDoor
        from appliance.publish.mqtt import MqttPublisher

        publisher = MqttPublisher(m, config.device.id)
        door.listeners.append(publisher.publish_event)
        state_door = control.door if control is not None else RemoteDoor(
            door, extra_state=db_state(db, with_sync)
        )  # fmt: skip
        parts.add("mqtt", publisher)
        if m.homeassistant:
            from appliance.publish.homeassistant import HomeAssistant

            ha = HomeAssistant(
                publisher, device_id=config.device.id, name=config.device.name,
                state_fn=state_door.status, data_dir=config.data_dir,
                control=control if m.commands else None, names=user_names(db),
                discovery_prefix=m.discovery_prefix, integration=m.ha_integration,
                with_sync=with_sync,
            )  # fmt: skip
            door.listeners.append(ha.on_event)
            ha.start()
            parts.add("homeassistant", ha)
        else:
            door.listeners.append(lambda _e: publisher.publish_state(state_door.status()))
        publisher.start()
    if sms:
        from .sms import SmsCommandReader

        g = config.alerts.gsm
        assert g is not None and control is not None
        reader = SmsCommandReader(
            g.port, g.baud, control, pin=g.pin.resolve("alerts.gsm.pin"), timeout_s=g.timeout_s,
            poll_s=r.sms_poll_s, listen_s=r.sms_listen_s,
        )  # fmt: skip
        parts.add("sms-commands", reader.start())
