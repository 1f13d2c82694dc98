"""[mqtt]: events and state to a broker."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from appliance.config.base import SecretRef, Section


class MqttConfig(Section, frozen=True, kw_only=True):
    # publish every event and the door's state to an MQTT broker (Home Assistant, Node-RED)
    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 1883
    username: str | None = None
    password: SecretRef = SecretRef()
    topic_prefix: Annotated[str, Meta(min_length=1, pattern=r"^[^#+]+$")] = "doorward"
