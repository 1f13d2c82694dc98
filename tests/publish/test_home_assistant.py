"""Home Assistant discovery, state and remote commands on the real Mosquitto (127.0.0.1:1883),
seen by a Home Assistant-shaped client (tests/support/ha_client.py) that validates every
discovery payload against a schema written from Home Assistant's documentation."""

from __future__ import annotations

import json
import socket
import uuid

import pytest

from appliance.config import MqttConfig
from appliance.publish.discovery import EVENT_TYPES, discovery_payload
from appliance.publish.homeassistant import HomeAssistant
from appliance.publish.mqtt import MqttPublisher
from appliance.remote.codes import CodeBook, current_code
from appliance.remote.control import RemoteControl
from appliance.remote.principals import add_principal
from appliance.security import PinHasher
from tests.remote.fakes import FakeDoor
from tests.support.ha_client import HaClient, schema_errors

HASHER = PinHasher("test-pepper")
ENTITIES = {"lock", "door", "tamper", "lockdown", "lockdown_on", "snapshot_now", "access",
            "doorbell", "snapshot", "alerts_pending", "sync_lag"}  # fmt: skip


def broker_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 1883), timeout=1):
            return True
    except OSError:
        return False


class StateDoor(FakeDoor):
    def __init__(self) -> None:
        super().__init__()
        self.locked, self.door_open = True, False

    def status(self):
        return {"device_id": self.device_id, "locked": self.locked, "door_open": self.door_open,
                "tamper": False, "lockdown": self.lockdown, "alerts_pending": 2,
                "sync_lag_s": 4.0}  # fmt: skip

    def remote_unlock(self, *, by, source, method):
        super().remote_unlock(by=by, source=source, method=method)
        self.locked = False


@pytest.fixture
def prefixes():
    tag = uuid.uuid4().hex[:8]
    return f"ha-{tag}", f"dw-{tag}"


@pytest.fixture
def ha(need, prefixes):
    need(broker_up(), "Mosquitto is not listening on 127.0.0.1:1883")
    client = HaClient(prefix=prefixes[0])
    yield client
    client.close()


@pytest.fixture
def bridge(db, tmp_path, prefixes):
    door = StateDoor()
    pub = MqttPublisher(MqttConfig(enabled=True, topic_prefix=prefixes[1]), door.device_id)
    control = RemoteControl(door, db, CodeBook(db, HASHER, door.device_id))
    bridge = HomeAssistant(
        pub, device_id=door.device_id, name="Front door", state_fn=door.status, data_dir=tmp_path,
        control=control, discovery_prefix=prefixes[0], with_sync=True, state_interval_s=0.1,
    )  # fmt: skip
    bridge.start()
    pub.start()
    yield bridge, door
    bridge.remove()
    bridge.stop()
    pub.stop()
    for topic in (f"{pub.base}/availability",):  # stop() leaves "offline" retained
        pub2 = HaClient(prefix=prefixes[0])
        pub2.publish(topic, b"", retain=True)
        pub2.close()


def test_every_payload_fits_the_schema_and_the_schema_catches_mistakes() -> None:
    good = discovery_payload(device_id="front.door", name="Front door", base="doorward/front.door",
                             integration="home-assistant", with_sync=True)  # fmt: skip
    assert schema_errors(good) == []
    assert set(good["components"]) == ENTITIES
    assert good["components"]["access"]["event_types"] == EVENT_TYPES
    assert "duress" not in json.dumps(good)
    bad = json.loads(json.dumps(good))
    del bad["origin"]
    bad["components"]["lock"]["retain"] = True  # a retained unlock would replay
    bad["components"]["door"]["stat_topic"] = "x"  # a typo HA would silently ignore
    del bad["components"]["access"]["event_types"]
    bad["components"]["snapshot"]["url_topic"] = "x"  # image_topic and url_topic exclude
    errors = "\n".join(schema_errors(bad))
    for fragment in ("'origin' is a required property", "components/lock/retain",
                     "stat_topic", "'event_types' is a required property",
                     "components/snapshot"):  # fmt: skip
        assert fragment in errors, errors


def test_ha_sees_the_device_and_its_entities_and_gets_discovery_again_at_its_birth(
    ha, bridge, prefixes
):
    hb, door = bridge
    topic = ha.discovered()
    assert topic == f"{prefixes[0]}/device/doorward_door-t/config"
    assert ha.invalid == []
    assert {cid for (_d, cid) in ha.components()} == ENTITIES
    ha.wait(lambda: ha.state("lock") == "LOCKED", what="the lock's state")
    ha.wait(ha.available, what="availability online")
    assert ha.state("door") == "OFF" and ha.state("tamper") == "OFF"
    assert ha.state("alerts_pending") == "2" and ha.state("sync_lag") == "4.0"
    # retained: a Home Assistant that starts later still finds it
    late = HaClient(prefix=prefixes[0])
    try:
        late.wait(lambda: late.discovery_messages, what="the retained discovery")
        assert late.discovery_messages[0][2] is True  # delivered from the broker's store
    finally:
        late.close()
    sent = hb.discoveries_sent
    ha.birth()  # Home Assistant restarted: homeassistant/status = online
    ha.wait(lambda: hb.discoveries_sent > sent and len(ha.discovery_messages) >= 2,
            what="discovery re-sent on HA's birth message")  # fmt: skip
    # the door contact contradicting the relay: JAMMED
    door.door_open = True
    ha.wait(lambda: ha.state("lock") == "JAMMED", what="JAMMED")
    assert ha.state("door") == "ON"


def test_remote_unlock_from_ha_needs_a_valid_code_and_a_replay_does_nothing(db, ha, bridge):
    hb, door = bridge
    p = add_principal(db, kind="integration", name="home-assistant", may_unlock=True)
    ha.discovered()
    ha.follow(f"{hb.base}/command/result")
    ha.operate_lock("unlock")  # HA's dialog left empty
    ha.wait(lambda: ha.raw.get(f"{hb.base}/command/result"), what="an answer")
    result = json.loads(ha.raw[f"{hb.base}/command/result"])
    assert result["ok"] is False and result["reason"] == "code_required" and door.unlocks == []
    code = current_code(HASHER, p.label)
    ha.operate_lock("unlock", code)
    ha.wait(lambda: ha.state("lock") == "UNLOCKED", what="UNLOCKED after a coded unlock")
    assert door.unlocks == [{"by": "home-assistant", "source": f"mqtt:{hb.base}/command",
                             "method": "mqtt"}]  # fmt: skip
    ha.operate_lock("unlock", code)  # the same code again
    ha.wait(lambda: json.loads(ha.raw[f"{hb.base}/command/result"])["reason"]
            == "code_already_used", what="the replay refused")  # fmt: skip
    assert len(door.unlocks) == 1
    assert [(a[0], a[1]) for a in door.audits] == [
        ("remote_refused", "code_required"),
        ("remote_refused", "code_already_used"),
    ]


def test_a_retained_command_does_nothing(db, ha, bridge):
    hb, door = bridge
    p = add_principal(db, kind="integration", name="home-assistant", may_unlock=True)
    ha.discovered()
    ha.follow(f"{hb.base}/command/result")
    body = json.dumps({"action": "unlock", "integration": "home-assistant",
                       "code": current_code(HASHER, p.label)})  # fmt: skip
    ha.publish(f"{hb.base}/command", body, retain=True)
    try:
        ha.wait(lambda: ha.raw.get(f"{hb.base}/command/result"), what="an answer")
        # the door was already subscribed, so the broker delivers it live (retain flag clear):
        # the code protects that one; a door subscribing later gets it *as retained*
        hb.pub._client.unsubscribe(f"{hb.base}/command")
        hb.pub._client.subscribe(f"{hb.base}/command", qos=1)
        ha.wait(lambda: any(a[1] == "retained_command" for a in door.audits),
                what="the retained copy refused")  # fmt: skip
    finally:
        ha.publish(f"{hb.base}/command", b"", retain=True)
    # the live copy acted once (its code was valid); the retained copy was refused as retained,
    # before its code was even looked at
    assert len(door.unlocks) == 1
    assert [a[1] for a in door.audits] == ["retained_command"]


def test_buttons_lockdown_and_snapshot(db, ha, bridge):
    hb, door = bridge
    add_principal(db, kind="integration", name="home-assistant")
    ha.discovered()
    ha.press("lockdown_on")
    ha.wait(lambda: ha.state("lockdown") == "ON", what="lockdown on")
    assert door.lockdowns == [(True, "home-assistant", f"mqtt:{hb.base}/command")]
    ha.press("snapshot_now")
    ha.wait(lambda: any(a[1] == "snapshot" for a in door.audits), what="snapshot audited")


def test_decommission_removes_the_device_from_ha(ha, bridge, prefixes):
    hb, _door = bridge
    topic = ha.discovered()
    hb.remove()
    ha.wait(lambda: topic in ha.removed and not ha.devices, what="the device removed")
    late = HaClient(prefix=prefixes[0])
    try:
        late.follow(f"{hb.base}/state")
        assert not late.devices and not late.raw.get(f"{hb.base}/state")
    finally:
        late.close()


class CapturingPublisher:
    """What a publisher was asked to send (the duress rule is about what leaves the door)."""

    def __init__(self) -> None:
        import threading

        self.base = "dw/door-t"
        self.availability = f"{self.base}/availability"
        self.sent: list[tuple[str, bytes | str]] = []
        self.connected = threading.Event()
        self.on_connected: list = []

    def publish(self, topic, payload, *, retain=False):
        self.sent.append((topic, payload))

    def publish_state(self, state):
        self.sent.append((f"{self.base}/state", json.dumps(state)))

    def subscribe(self, topic, handler):
        pass


def _snapshot(data_dir, name: str) -> str:
    """A snapshot file as the door stores it; its path relative to the data dir."""
    rel = f"snapshots/2026/11/25/{name}.jpg"
    (data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
    (data_dir / rel).write_bytes(b"\xff\xd8\xff\xe0" + name.encode() + b"\xff\xd9")
    return rel


def _what_leaves(data_dir, events) -> list[tuple[str, bytes | str]]:
    """Everything a connected door's Home Assistant bridge publishes for these events, and
    then at a reconnect (which sends the latest snapshot again)."""
    pub = CapturingPublisher()
    pub.connected.set()
    ha = HomeAssistant(pub, device_id="door-t", name="Front door", data_dir=data_dir,  # type: ignore[arg-type]
                       state_fn=lambda: {"locked": True})  # fmt: skip
    for event in events:
        ha.on_event(event)
    ha._on_connected()  # the broker came back
    return pub.sent


@pytest.mark.parametrize("grant_snapshot", [True, False], ids=["grant-photo", "no-grant-photo"])
def test_duress_never_leaves_the_door(tmp_path, grant_snapshot) -> None:
    """The duress event (with its snapshot) publishes nothing, not even its photo, and the
    grant after a duress code publishes exactly what the same grant after a normal code does:
    same topics, same payloads, same order, also at a reconnect."""
    from appliance.door import RecordedEvent
    from appliance.publish.discovery import scrub

    duress_photo = _snapshot(tmp_path, "duress")
    grant_photo = _snapshot(tmp_path, "grant") if grant_snapshot else None
    duress = RecordedEvent("1", "duress", "t1", 7, None, None, duress_photo, "a1", {})
    grant = RecordedEvent("2", "granted", "t2", 7, 0.3, "match", grant_photo, None,
                          {"duress": True})  # fmt: skip
    plain = RecordedEvent("2", "granted", "t2", 7, 0.3, "match", grant_photo, None, {})
    assert scrub(duress.as_dict()) is None
    assert scrub(grant.as_dict()) == scrub(plain.as_dict())

    snapshot_topic = f"{CapturingPublisher().base}/snapshot"
    # the duress event alone: nothing at all, and a reconnect sends no photo of it
    assert _what_leaves(tmp_path, [duress]) == _what_leaves(tmp_path, [])
    assert all(t != snapshot_topic for t, _ in _what_leaves(tmp_path, [duress]))

    sent = _what_leaves(tmp_path, [duress, grant])
    assert sent == _what_leaves(tmp_path, [plain])
    photos = [p for t, p in sent if t == snapshot_topic]
    duress_bytes = (tmp_path / duress_photo).read_bytes()
    assert duress_bytes not in photos
    if grant_photo:  # the grant's own photo goes out, as for any grant (and again at reconnect)
        assert photos == [(tmp_path / grant_photo).read_bytes()] * 2
    else:
        assert photos == []
    text = " ".join(f"{t} {p!r}" for t, p in sent)
    assert "duress" not in text
    access = [json.loads(p) for t, p in sent if t.endswith("/ha/access")]
    assert [a["event_type"] for a in access] == ["granted"]

    def raw_events(events) -> list:
        raw = MqttPublisher(MqttConfig(enabled=True, topic_prefix="dw"), "door-t")
        out: list = []
        raw._client.publish = lambda topic, payload, **kw: out.append((topic, payload))  # type: ignore[method-assign]
        for event in events:
            raw.publish_event(event)
        return out

    raw_sent = raw_events([duress, grant])
    assert [t for t, _ in raw_sent] == ["dw/door-t/event/granted"]
    assert "duress" not in raw_sent[0][1]
    assert raw_sent == raw_events([plain])


def test_duress_never_leaves_the_door_as_a_jump_of_alerts_waiting(db, monkeypatch) -> None:
    """The state published over MQTT (HA's "Alerts waiting") is the door's alert-queue depth:
    a duress alert queued at what HA shows as a plain grant must not move it (0 -> 1 would
    tell), while any other alert does."""
    from appliance.alerts.outbox import enqueue_alert
    from appliance.door.remote import RemoteDoor
    from appliance.remote import runtime
    from appliance.store.models import AccessEvent, new_uuid, utcnow

    class Door(FakeDoor):
        class board:
            tamper_alarm = False

    monkeypatch.setattr(runtime, "EXTRA_STATE_TTL_S", 0.0)  # read the queue at every state
    state = RemoteDoor(Door(), extra_state=runtime.db_state(db, False)).status  # as wired

    def queue(kind: str) -> None:  # what the recorder commits
        with db.session() as s:
            event = AccessEvent(id=new_uuid(), device_id="door-t", ts=utcnow(), kind=kind,
                                user_number=12)  # fmt: skip
            s.add(event)
            s.flush()
            enqueue_alert(s, event=event)

    before = state()["alerts_pending"]
    queue("duress")
    assert state()["alerts_pending"] == before
    assert "duress" not in json.dumps(state())
    queue("forced")
    assert state()["alerts_pending"] == before + 1


def test_access_events_carry_who_how_and_the_distance(tmp_path) -> None:
    from appliance.door import RecordedEvent

    pub = CapturingPublisher()
    ha = HomeAssistant(pub, device_id="door-t", name="Front door", data_dir=tmp_path,  # type: ignore[arg-type]
                       state_fn=lambda: {"locked": True},
                       names={7: "Ada"}.get)  # fmt: skip
    ha.on_event(RecordedEvent("1", "granted", "t1", 7, 0.31, "match", None, None, {}))
    ha.on_event(RecordedEvent("2", "denied_face", "t2", 7, 0.72, "mismatch", None, "a", {}))
    ha.on_event(RecordedEvent("3", "granted", "t3", None, None, "remote", None, None,
                              {"method": "sms", "by": "ada", "source": "sms:+4470"}))  # fmt: skip
    ha.on_event(RecordedEvent("4", "motion", "t4", None, None, None, None, None, {}))
    access = [json.loads(p) for t, p in pub.sent if t.endswith("/ha/access")]
    assert [(a["event_type"], a["user_name"], a["user_number"], a["method"], a["distance"])
            for a in access] == [("granted", "Ada", 7, "keypad+face", 0.31),
                                 ("denied", "Ada", 7, None, 0.72),
                                 ("granted", None, None, "sms", None)]  # fmt: skip
    assert access[2]["by"] == "ada" and set(access[0]) >= {"kind", "time", "reason"}
