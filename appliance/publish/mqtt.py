"""Owns the MQTT publisher: every recorded event as JSON, and the door's state, retained; the
subscriptions that listen back (remote commands, Home Assistant's birth message)."""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

from appliance.config import MqttConfig

from .discovery import scrub

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes, bool], None]  # topic, payload, retained


class MqttPublisher:
    """Publishes to `<prefix>/<device>/event/<kind>` (QoS 1) and `<prefix>/<device>/state`
    (retained), with a retained `online`/`offline` availability topic (last will).

    publish() never blocks the door: paho queues messages and its own thread sends them,
    reconnecting by itself when the broker comes back. Messages queued while the broker is
    away are bounded (max_queued) so a long outage cannot eat the Pi's memory.

    TLS: with `tls_ca_file` the broker's certificate is verified against that CA (and its
    name against `host`); `tls_cert_file`/`tls_key_file` add a client certificate.
    """

    def __init__(self, config: MqttConfig, device_id: str, *, max_queued: int = 1000) -> None:
        import paho.mqtt.client as mqtt

        self.config = config
        self.base = f"{config.topic_prefix.rstrip('/')}/{device_id}"
        self.availability = f"{self.base}/availability"
        self._client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"doorward-{device_id}"
        )
        self._client.max_queued_messages_set(max_queued)
        if config.username:
            self._client.username_pw_set(config.username, config.password.resolve("mqtt.password"))
        ca = config.tls_ca_file
        if ca is not None:
            cert = config.tls_cert_file
            key = config.tls_key_file
            self._client.tls_set(
                ca_certs=str(ca),
                certfile=str(cert) if cert else None,
                keyfile=str(key) if key else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        self._client.will_set(self.availability, "offline", qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._handlers: dict[str, Handler] = {}
        self.on_connected: list[Callable[[], None]] = []
        self.connected = threading.Event()
        self.last_refusal: str | None = None

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if getattr(reason, "is_failure", False):
            self.last_refusal = str(reason)
            log.warning("event=mqtt_refused reason=%s", reason)
            return
        client.publish(self.availability, "online", qos=1, retain=True)
        for topic in self._handlers:
            client.subscribe(topic, qos=1)
        self.connected.set()
        log.info("event=mqtt_connected host=%s port=%d", self.config.host, self.config.port)
        for hook in list(self.on_connected):
            try:
                hook()
            except Exception:
                log.exception("event=mqtt_connect_hook_failed")

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        handler = self._handlers.get(msg.topic)
        if handler is None:
            return
        try:
            handler(msg.topic, bytes(msg.payload), bool(msg.retain))
        except Exception:
            log.exception("event=mqtt_handler_failed topic=%s", msg.topic)

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Call `handler(topic, payload, retained)` for each message on `topic` (exact topic;
        subscribed again on every reconnect). Handlers run on paho's network thread."""
        self._handlers[topic] = handler
        if self.connected.is_set():
            self._client.subscribe(topic, qos=1)

    def start(self) -> None:
        self._client.connect_async(self.config.host, self.config.port, keepalive=30)
        self._client.loop_start()

    def publish(self, topic: str, payload: str | bytes, *, retain: bool = False) -> Any:
        return self._client.publish(topic, payload, qos=1, retain=retain)

    def publish_event(self, event: Any) -> None:
        """A Door listener: one RecordedEvent -> one JSON message (duress never leaves)."""
        data = scrub(event.as_dict())
        if data is None:
            return
        self._client.publish(f"{self.base}/event/{event.kind}", json.dumps(data, default=str),
                             qos=1)  # fmt: skip

    def publish_state(self, state: dict[str, Any]) -> None:
        self._client.publish(f"{self.base}/state", json.dumps(state), qos=1, retain=True)

    def stop(self) -> None:
        try:
            info = self._client.publish(self.availability, "offline", qos=1, retain=True)
            if self.connected.is_set():
                info.wait_for_publish(timeout=2)
        except Exception:
            log.exception("event=mqtt_offline_failed")
        self._client.disconnect()
        self._client.loop_stop()
