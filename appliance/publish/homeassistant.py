"""Owns the Home Assistant side of MQTT: discovery (sent on connect and whenever Home
Assistant announces `online`), the state its entities read, access and doorbell events, the
latest snapshot as an image, remote commands, and the removal of the device.

Commands arrive on `<base>/command` as JSON, e.g. {"action": "unlock", "integration":
"home-assistant", "code": "123456"}; the answer goes to `<base>/command/result` (never
retained). A retained command is refused unread: a command is something someone does now.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .discovery import access_event, discovery_payload, discovery_topic, lock_state, scrub
from .mqtt import MqttPublisher

log = logging.getLogger(__name__)

SNAPSHOT_MAX_BYTES = 2_000_000  # larger files are not sent (a 1080p JPEG is ~0.2-0.5 MB)


class HomeAssistant:
    def __init__(
        self,
        publisher: MqttPublisher,
        *,
        device_id: str,
        name: str,
        state_fn: Callable[[], dict[str, Any]],
        data_dir: Path,
        control: Any = None,  # appliance.remote.control.RemoteControl
        names: Callable[[int], str | None] = lambda _n: None,
        discovery_prefix: str = "homeassistant",
        integration: str = "home-assistant",
        with_sync: bool = False,
        state_interval_s: float = 1.0,
    ) -> None:
        self.pub = publisher
        self.device_id = device_id
        self.name = name
        self.state_fn = state_fn
        self.data_dir = data_dir
        self.control = control
        self.names = names
        self.prefix = discovery_prefix.rstrip("/")
        self.integration = integration
        self.with_sync = with_sync
        self.state_interval_s = state_interval_s
        self.base = publisher.base
        self.topic = discovery_topic(self.prefix, device_id)
        self.discoveries_sent = 0
        self._last_state: dict[str, Any] | None = None
        self._latest_snapshot: str | None = None
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- discovery ------------------------------------------------------------------------
    def payload(self) -> dict[str, Any]:
        return discovery_payload(
            device_id=self.device_id, name=self.name, base=self.base,
            integration=self.integration, with_sync=self.with_sync,
        )  # fmt: skip

    def publish_discovery(self) -> None:
        self.pub.publish(self.topic, json.dumps(self.payload()), retain=True)
        self.discoveries_sent += 1
        log.info("event=ha_discovery_sent topic=%s", self.topic)

    def _on_connected(self) -> None:
        self.publish_discovery()
        with self._state_lock:
            self._last_state = None  # publish it again after a reconnect
        self.publish_state()
        if self._latest_snapshot:
            self._publish_snapshot(self._latest_snapshot)

    def _on_ha_status(self, _topic: str, payload: bytes, _retained: bool) -> None:
        if payload.strip() == b"online":  # Home Assistant (re)started: it wants discovery
            self.publish_discovery()
            with self._state_lock:
                self._last_state = None
            self.publish_state()

    def remove(self, timeout_s: float = 5.0) -> None:
        """Decommission: the device leaves Home Assistant and the broker keeps nothing of it
        (empty retained messages on discovery, state, snapshot and availability)."""
        infos = [
            self.pub.publish(topic, b"", retain=True)
            for topic in (self.topic, f"{self.base}/state", f"{self.base}/snapshot",
                          self.pub.availability)
        ]  # fmt: skip
        for info in infos:
            info.wait_for_publish(timeout=timeout_s)

    # ---- state ----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        st = dict(self.state_fn())
        st["lock"] = lock_state(st)
        return st

    def publish_state(self) -> bool:
        """Publish the state when it changed since the last time; True when it did."""
        try:
            st = self.state()
        except Exception:
            log.exception("event=ha_state_failed")
            return False
        with self._state_lock:
            if st == self._last_state:
                return False
            self._last_state = st
        self.pub.publish_state(st)
        return True

    def _poll(self) -> None:
        # the relay ends a pulse by its own timer and the queue drains without any event: the
        # state is read every state_interval_s and published when it changed
        while not self._stop.wait(self.state_interval_s):
            self.publish_state()

    # ---- events (a Door listener) ---------------------------------------------------------
    def on_event(self, event: Any) -> None:
        data = scrub(event.as_dict())
        if data is None:
            return
        if data["event"] == "doorbell":
            ring = {"event_type": "ring", "time": data["ts"], "snapshot": data["snapshot"]}
            self.pub.publish(f"{self.base}/ha/doorbell", json.dumps(ring))
        else:
            number = data.get("user_number")
            name = self.names(number) if isinstance(number, int) else None
            access = access_event(data, name)
            if access is not None:
                self.pub.publish(f"{self.base}/ha/access", json.dumps(access, default=str))
        if data.get("snapshot"):
            self._latest_snapshot = data["snapshot"]
            self._publish_snapshot(data["snapshot"])
        self.publish_state()

    def _publish_snapshot(self, rel: str) -> None:
        if not self.pub.connected.is_set():
            return  # never queue images in memory while the broker is away: the latest is
            # sent on reconnect
        path = self.data_dir / rel
        try:
            if path.stat().st_size > SNAPSHOT_MAX_BYTES:
                log.warning("event=ha_snapshot_too_large path=%s", rel)
                return
            data = path.read_bytes()
        except OSError as exc:
            log.warning("event=ha_snapshot_unreadable path=%s error=%r", rel, str(exc))
            return
        self.pub.publish(f"{self.base}/snapshot", data, retain=True)

    # ---- commands -------------------------------------------------------------------------
    def _on_command(self, topic: str, payload: bytes, retained: bool) -> None:
        from appliance.remote.control import Request

        if not payload:
            return  # an empty message clears a retained one: nothing was asked
        source = f"mqtt:{topic}"
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("action"), str):
            reply = self.control.refuse(Request("malformed", "mqtt", "?", source), "malformed")
            return self._answer("?", reply)
        action = str(data["action"])[:32]
        who = str(data.get("integration") or "?")[:64]
        code = data.get("code")
        req = Request(
            action, "mqtt", who, source,
            code=str(code) if code not in (None, "") else None,
            ts=data.get("ts"), nonce=data.get("nonce"), sig=data.get("sig"),
        )  # fmt: skip
        if retained:
            reply = self.control.refuse(req, "retained_command")
        elif action == "lock":
            from appliance.remote.control import Reply

            reply = Reply(True, "LOCK: the door locks by itself when a pulse ends")
        else:
            reply = self.control.handle(req)
        self._answer(action, reply)
        self.publish_state()

    def _answer(self, action: str, reply: Any) -> None:
        body = {"action": action, "ok": reply.ok, "reason": reply.reason, "text": reply.text}
        self.pub.publish(f"{self.base}/command/result", json.dumps(body))

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> HomeAssistant:
        self.pub.on_connected.append(self._on_connected)
        self.pub.subscribe(f"{self.prefix}/status", self._on_ha_status)
        if self.control is not None:
            self.pub.subscribe(f"{self.base}/command", self._on_command)
        if self.pub.connected.is_set():
            self._on_connected()
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="ha-state", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
