"""Events and door state published to the real Mosquitto broker on 127.0.0.1:1883."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import time
import uuid

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.config import MqttConfig
from appliance.core import DoorOpened
from appliance.door import Door
from appliance.hardware.camera import ReplayCamera
from appliance.publish.mqtt import MqttPublisher


def broker_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def subscriber(need):
    import paho.mqtt.client as mqtt

    need(broker_up(), "Mosquitto is not listening on 127.0.0.1:1883")
    got: queue.Queue = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, msg: got.put((msg.topic, msg.payload.decode()))
    client.subscribed = threading.Event()  # set by the broker's SUBACK
    client.on_subscribe = lambda *_a: client.subscribed.set()
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    yield client, got
    client.loop_stop()
    client.disconnect()


def collect(got: queue.Queue, done, timeout: float = 10.0) -> list[tuple[str, str]]:
    """Messages as they arrive, until `done(messages)` holds (fails after `timeout`)."""
    out: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while not done(out):
        if time.monotonic() > deadline:
            raise AssertionError(f"broker messages incomplete after {timeout} s: {out}")
        with contextlib.suppress(queue.Empty):
            out.append(got.get(timeout=0.1))
    return out


def test_events_state_and_availability_reach_the_broker(config, db, subscriber) -> None:
    client, got = subscriber
    prefix = f"dwtest-{uuid.uuid4().hex[:8]}"
    base = f"{prefix}/door-9"
    client.subscribe(f"{prefix}/#", qos=1)
    assert client.subscribed.wait(5), "the broker never acknowledged the subscription"
    pub = MqttPublisher(MqttConfig(enabled=True, topic_prefix=prefix), "door-9")
    pub.start()
    assert pub.connected.wait(5)
    door = Door(config, db, factory=MockFactory(), camera=ReplayCamera([]), face_engine=object())
    door.listeners.append(pub.publish_event)
    door.listeners.append(lambda _e: pub.publish_state(door.status()))
    try:
        door.handle(DoorOpened())  # nobody was granted: forced
        messages = collect(got, lambda ms: any(t == f"{base}/event/forced" for t, _ in ms))
    finally:
        door.close()
        pub.stop()
    messages += collect(got, lambda ms: (f"{base}/availability", "offline") in ms)
    by_topic: dict[str, list[str]] = {}
    for topic, payload in messages:
        by_topic.setdefault(topic, []).append(payload)
    event = json.loads(by_topic[f"{base}/event/forced"][0])
    assert event["event"] == "forced" and event["alert_id"]
    state = json.loads(by_topic[f"{base}/state"][-1])
    assert state["locked"] is True and state["door_open"] is False
    assert by_topic[f"{base}/availability"] == ["online", "offline"]
    for topic in (f"{base}/availability", f"{base}/state"):  # leave no retained messages
        client.publish(topic, b"", retain=True)
