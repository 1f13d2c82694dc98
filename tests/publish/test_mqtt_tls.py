"""TLS to the broker: a Mosquitto of the test's own on a free loopback port, TLS only, with a
CA and certificates made by openssl in the test (tests/support/tls_broker.py)."""

from __future__ import annotations

import shutil
import ssl
import threading

import pytest

from appliance.config import ConfigError, MqttConfig
from appliance.publish.mqtt import MqttPublisher
from tests.support.tls_broker import make_pki, tls_mosquitto
from tests.support.waiting import eventually


@pytest.fixture
def pki(need, tmp_path):
    need(shutil.which("mosquitto") is not None or __import__("os").path.exists(
        "/usr/sbin/mosquitto"), "mosquitto is not installed")  # fmt: skip
    need(shutil.which("openssl") is not None, "openssl is not installed")
    return make_pki(tmp_path / "pki")


def tls_subscriber(port: int, pki, topic: str):
    import paho.mqtt.client as mqtt

    got: list[tuple[str, bytes]] = []
    arrived = threading.Event()
    subscribed = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.tls_set(ca_certs=str(pki.ca), certfile=str(pki.client_cert), keyfile=str(pki.client_key))
    c.on_subscribe = lambda *_a: subscribed.set()

    def on_message(_c, _u, msg):
        got.append((msg.topic, bytes(msg.payload)))
        arrived.set()

    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe(topic, qos=1)
    assert subscribed.wait(5)
    return c, got, arrived


def publisher(port: int, **tls) -> MqttPublisher:
    cfg = MqttConfig.convert({"enabled": True, "host": "127.0.0.1", "port": port,
                              "topic_prefix": "tls-test", **tls})  # fmt: skip
    return MqttPublisher(cfg, "door-tls")


def refused(pub: MqttPublisher, seconds: float = 3.0) -> bool:
    """True when the publisher did not get a connection within `seconds` (paho keeps
    retrying in its thread; a TLS failure never turns into a connection)."""
    pub.start()
    try:
        return not pub.connected.wait(seconds)
    finally:
        pub.stop()


def test_the_door_publishes_over_tls_with_a_verified_broker(pki, tmp_path):
    with tls_mosquitto(tmp_path, pki, require_client_cert=False) as port:
        sub, got, _arrived = tls_subscriber(port, pki, "tls-test/#")
        pub = publisher(port, tls_ca_file=str(pki.ca))
        pub.start()
        try:
            assert pub.connected.wait(10), "no TLS connection to the broker"
            pub.publish_state({"locked": True})
            eventually(lambda: ("tls-test/door-tls/state", b'{"locked": true}') in got,
                       what="the state over TLS")  # fmt: skip
            assert ("tls-test/door-tls/availability", b"online") in got
        finally:
            pub.stop()
            sub.loop_stop()
            sub.disconnect()


# paho drops the SSLSocket of a failed handshake without closing it; the garbage collector
# closes it (a ResourceWarning, not a leak): that warning is paho's, not a test failure
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_broker_signed_by_another_ca_or_plain_mqtt_to_a_tls_port_never_connects(pki, tmp_path):
    with tls_mosquitto(tmp_path, pki, require_client_cert=False) as port:
        assert refused(publisher(port, tls_ca_file=str(pki.other_ca)))
        assert refused(publisher(port))  # no TLS configured: plain MQTT to a TLS listener


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_broker_that_asks_for_a_client_certificate(pki, tmp_path):
    with tls_mosquitto(tmp_path, pki, require_client_cert=True) as port:
        assert refused(publisher(port, tls_ca_file=str(pki.ca)))  # no client certificate
        pub = publisher(port, tls_ca_file=str(pki.ca), tls_cert_file=str(pki.client_cert),
                        tls_key_file=str(pki.client_key))  # fmt: skip
        pub.start()
        try:
            assert pub.connected.wait(10), "the client certificate was not accepted"
        finally:
            pub.stop()


def test_tls_settings_are_checked_by_name() -> None:
    with pytest.raises(ConfigError, match="mqtt.tls_key_file: tls_cert_file and tls_key_file"):
        from appliance.config import Config

        Config.convert({"mqtt": {"tls_cert_file": "/c.pem", "tls_ca_file": "/ca.pem"}})
    with pytest.raises(ConfigError, match="mqtt.tls_ca_file: a client certificate needs TLS"):
        from appliance.config import Config

        Config.convert({"mqtt": {"tls_cert_file": "/c.pem", "tls_key_file": "/k.pem"}})
    assert ssl.PROTOCOL_TLS_CLIENT  # the client side verifies names (check_hostname)
