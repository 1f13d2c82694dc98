"""Owns the MQTT publisher: every recorded event as JSON, and the door's state, retained."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from appliance.config import MqttConfig

log = logging.getLogger(__name__)


class MqttPublisher:
    """Publishes to `<prefix>/<device>/event/<kind>` (QoS 1) and `<prefix>/<device>/state`
    (retained), with a retained `online`/`offline` availability topic (last will).

    publish() never blocks the door: paho queues messages and its own thread sends them,
    reconnecting by itself when the broker comes back. Messages queued while the broker is
    away are bounded (max_queued) so a long outage cannot eat the Pi's memory.
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
        self._client.will_set(self.availability, "offline", qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self.connected = threading.Event()

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("event=mqtt_refused reason=%s", reason)
            return
        client.publish(self.availability, "online", qos=1, retain=True)
        self.connected.set()
        log.info("event=mqtt_connected host=%s port=%d", self.config.host, self.config.port)

    def start(self) -> None:
        self._client.connect_async(self.config.host, self.config.port, keepalive=30)
        self._client.loop_start()

    def publish_event(self, event: Any) -> None:
        """A Door listener: one RecordedEvent -> one JSON message."""
        payload = json.dumps(event.as_dict(), default=str)
        self._client.publish(f"{self.base}/event/{event.kind}", payload, qos=1)

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
