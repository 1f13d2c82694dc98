"""A Home Assistant-shaped MQTT client for tests: it does what Home Assistant's MQTT
integration does with device-based discovery, on a real broker.

- subscribes to `<prefix>/#` and takes every `<prefix>/device/<id>/config` message; each
  payload is checked against tests/publish/ha_discovery.schema.json (written from Home
  Assistant's documentation) before it is used; an empty payload removes the device;
- subscribes to every entity's state topic and renders `value_template` with Jinja2 and
  `value_json`, as Home Assistant does, so `state(entity)` is what HA would show;
- keeps the last payload of each event entity and image entity;
- presses buttons and operates the lock the way HA does: the lock's `command_template`
  rendered with `value` (payload_lock/unlock) and `code`, published unretained.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import jinja2
from jsonschema import Draft202012Validator

SCHEMA = json.loads((Path(__file__).parent.parent / "publish" / "ha_discovery.schema.json")
                    .read_text(encoding="utf-8"))  # fmt: skip
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
_JINJA = jinja2.Environment(autoescape=False)


def schema_errors(payload: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in VALIDATOR.iter_errors(payload)]  # fmt: skip


class HaClient:
    def __init__(self, host: str = "127.0.0.1", port: int = 1883, prefix: str = "homeassistant"):
        import paho.mqtt.client as mqtt

        self.prefix = prefix
        self.devices: dict[str, dict[str, Any]] = {}  # discovery topic -> payload
        self.discovery_messages: list[tuple[str, bytes, bool]] = []
        self.removed: list[str] = []
        self.invalid: list[tuple[str, list[str]]] = []
        self.raw: dict[str, bytes] = {}  # last payload per subscribed topic
        self.events: dict[str, list[dict[str, Any]]] = {}  # event entity -> payloads
        self.images: dict[str, bytes] = {}
        self.changed = threading.Condition()
        self._topics: set[str] = set()
        self._followers: list[threading.Thread] = []
        self.follow_errors: list[str] = []
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                   client_id=f"ha-test-{uuid.uuid4().hex[:8]}")  # fmt: skip
        self._client.on_message = self._on_message
        self._acks: dict[int, threading.Event] = {}
        self._acks_lock = threading.Lock()
        self._client.on_subscribe = self._on_subscribe
        self._client.connect(host, port)
        self._client.loop_start()
        self._subscribe(f"{prefix}/#")

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, *_rest: Any) -> None:
        with self._acks_lock:
            self._acks.setdefault(mid, threading.Event()).set()

    def _subscribe(self, topic: str) -> None:
        with self._acks_lock:
            if topic in self._topics:
                return
            self._topics.add(topic)
            _rc, mid = self._client.subscribe(topic, qos=1)
            ack = self._acks.setdefault(mid, threading.Event())
        if not ack.wait(5):  # the broker's SUBACK: messages on it are delivered from now on
            raise AssertionError(f"the broker never acknowledged the subscription to {topic}")

    # ---- incoming -------------------------------------------------------------------------
    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        topic, payload = msg.topic, bytes(msg.payload)
        with self.changed:
            self.raw[topic] = payload
            if topic.startswith(f"{self.prefix}/device/") and topic.endswith("/config"):
                self.discovery_messages.append((topic, payload, bool(msg.retain)))
                self._discovery(topic, payload)
            for (_dev, cid), comp in self.components().items():
                if comp["platform"] == "event" and comp["state_topic"] == topic:
                    self.events.setdefault(cid, []).append(json.loads(payload))
                if comp["platform"] == "image" and comp.get("image_topic") == topic:
                    self.images[cid] = payload
            self.changed.notify_all()

    def _discovery(self, topic: str, payload: bytes) -> None:
        if not payload:
            self.devices.pop(topic, None)
            self.removed.append(topic)
            return
        data = json.loads(payload)
        errors = schema_errors(data)
        if errors:
            self.invalid.append((topic, errors))
            return
        self.devices[topic] = data
        # subscriptions happen off the network thread (a SUBACK must be able to arrive)
        t = threading.Thread(target=self._follow, args=(data,), daemon=True)
        self._followers.append(t)
        t.start()

    def _follow(self, data: dict[str, Any]) -> None:
        topics = {data["availability_topic"]} if "availability_topic" in data else set()
        for comp in data["components"].values():
            for key in ("state_topic", "image_topic"):
                if key in comp:
                    topics.add(comp[key])
        try:
            for t in sorted(topics):
                self._subscribe(t)
        except AssertionError as exc:  # reported by close(), in the test's own thread
            self.follow_errors.append(str(exc))

    def discovered(self, timeout: float = 10.0) -> str:
        """Wait for a device's discovery and for every entity topic it names to be subscribed
        (SUBACKs in): messages on them from now on reach this client. Its discovery topic."""
        topic = self.wait(lambda: next(iter(self.devices), None), timeout, "a discovery message")
        for t in list(self._followers):
            t.join(timeout)
        if self.follow_errors:
            raise AssertionError(f"HA client could not follow entity topics: {self.follow_errors}")
        return topic

    # ---- what HA would show ---------------------------------------------------------------
    def components(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(dev, cid): comp for dev, data in self.devices.items()
                for cid, comp in data["components"].items()}  # fmt: skip

    def component(self, cid: str) -> dict[str, Any]:
        (hit,) = [c for (_d, k), c in self.components().items() if k == cid]
        return hit

    def available(self) -> bool:
        (data,) = self.devices.values()
        return self.raw.get(data["availability_topic"]) == data.get("payload_available",
                                                                    "online").encode()  # fmt: skip

    def state(self, cid: str) -> str | None:
        comp = self.component(cid)
        raw = self.raw.get(comp["state_topic"])
        if not raw:
            return None
        template = comp.get("value_template", "{{ value }}")
        return _JINJA.from_string(template).render(value=raw.decode(), value_json=json.loads(raw))

    def wait(self, probe, timeout: float = 10.0, what: str = ""):
        """Wait for `probe()` (under the message lock) to be truthy; it is re-checked at every
        message (an event, not a sleep); fails after `timeout`."""
        import time

        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                value = probe()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"HA client: not within {timeout} s: {what or probe}")
                self.changed.wait(min(left, 0.2))

    # ---- what HA sends --------------------------------------------------------------------
    def birth(self) -> None:
        self._client.publish(f"{self.prefix}/status", "online", qos=1)

    def operate_lock(self, action: str, code: str = "") -> None:
        comp = self.component("lock")
        value = comp.get("payload_unlock" if action == "unlock" else "payload_lock",
                         action.upper())  # fmt: skip
        payload = _JINJA.from_string(comp.get("command_template", "{{ value }}")).render(
            value=value, code=code
        )
        self._client.publish(comp["command_topic"], payload, qos=comp.get("qos", 0),
                             retain=comp.get("retain", False))  # fmt: skip

    def press(self, cid: str) -> None:
        comp = self.component(cid)
        self._client.publish(comp["command_topic"], comp.get("payload_press", "PRESS"), qos=1,
                             retain=comp.get("retain", False))  # fmt: skip

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def follow(self, topic: str) -> None:
        self._subscribe(topic)

    def close(self) -> None:
        for t in self._followers:
            t.join(6)
        self._client.loop_stop()
        self._client.disconnect()
        if self.follow_errors:
            raise AssertionError(f"HA client could not follow entity topics: {self.follow_errors}")
