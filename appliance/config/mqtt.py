"""[mqtt]: events and state to a broker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from msgspec import Meta

from appliance.config.base import SecretRef, Section, key_error

Topic = Annotated[str, Meta(min_length=1, pattern=r"^[^#+]+$")]
Name = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class MqttConfig(Section, frozen=True, kw_only=True):
    # publish every event and the door's state to an MQTT broker (Home Assistant, Node-RED)
    enabled: bool = False
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 1883
    username: str | None = None
    password: SecretRef = SecretRef()
    topic_prefix: Topic = "doorward"
    # TLS to the broker: the CA that signed the broker's certificate (its name must match
    # host); a client certificate and its key (unencrypted PEM) when the broker asks for one
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Home Assistant MQTT discovery (one device with its entities), re-sent when Home
    # Assistant publishes "online" on <discovery_prefix>/status
    homeassistant: bool = True
    discovery_prefix: Topic = "homeassistant"
    # remote commands on <topic_prefix>/<device id>/command (unlock, lockdown, snapshot);
    # nothing acts until an integration is enrolled on the admin page's Remote page
    commands: bool = True
    # the integration name Home Assistant's commands carry (enrolled on the Remote page)
    ha_integration: Name = "home-assistant"

    def __post_init__(self) -> None:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise key_error("tls_key_file", "tls_cert_file and tls_key_file go together")
        if self.tls_cert_file is not None and self.tls_ca_file is None:
            raise key_error("tls_ca_file", "a client certificate needs TLS: set tls_ca_file")
