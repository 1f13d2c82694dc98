"""Done-when of issue #16 on a real door and the real Mosquitto: a Home Assistant-shaped
client sees the device and all its entities from discovery, drives a remote unlock with a
valid code (one pulse, audited) and is refused without one; a doorbell press reaches MQTT with
its snapshot. The door is wired by the same function `doorward run` uses (start_outward)."""

from __future__ import annotations

import json
import uuid

import pytest
from gpiozero.pins.mock import MockFactory
from sqlalchemy import select

from appliance.door import Door
from appliance.hardware.camera import ReplayCamera
from appliance.remote.codes import current_code
from appliance.remote.principals import add_principal
from appliance.remote.runtime import start_outward
from appliance.runtime import Parts
from appliance.security import pin_hasher
from appliance.store.models import AccessEvent
from tests.publish.test_home_assistant import ENTITIES, broker_up
from tests.support.ha_client import HaClient
from tests.support.waiting import eventually

DOORBELL_PIN = 26


@pytest.fixture
def wired(need, config, db, tmp_path):
    need(broker_up(), "Mosquitto is not listening on 127.0.0.1:1883")
    tag = uuid.uuid4().hex[:8]
    cfg = config.with_overrides(
        mqtt={"enabled": True, "topic_prefix": f"dw-{tag}", "discovery_prefix": f"ha-{tag}"},
        hardware={"pin_factory": "mock", "pins": {"doorbell": DOORBELL_PIN}},
        access={"relay_pulse_s": 1.0},
        device={"id": "front", "name": "Front door", "data_dir": str(config.data_dir)},
    )
    ha = HaClient(prefix=f"ha-{tag}")
    door = Door(cfg, db, factory=MockFactory(), camera=ReplayCamera([]), face_engine=object())
    parts = Parts()
    door.start()
    start_outward(cfg, door, db, parts, with_sync=False)
    base = f"dw-{tag}/front"
    try:
        yield cfg, door, ha, base
    finally:
        parts.stop_all(budget_s=10)
        door.close()
        for topic in (f"ha-{tag}/device/doorward_front/config", f"{base}/state",
                      f"{base}/snapshot", f"{base}/availability"):  # fmt: skip
            ha.publish(topic, b"", retain=True)
        ha.close()


def test_ha_sees_the_door_unlocks_it_once_with_a_code_and_never_without(wired, db):
    cfg, door, ha, base = wired
    ha.discovered()
    assert ha.invalid == []
    assert {cid for (_d, cid) in ha.components()} == ENTITIES - {"sync_lag"}  # no central DB
    ha.wait(lambda: ha.available() and ha.state("lock") == "LOCKED", what="online and LOCKED")
    p = add_principal(db, kind="integration", name="home-assistant", may_unlock=True)
    ha.follow(f"{base}/command/result")

    ha.operate_lock("unlock")  # no code
    ha.wait(lambda: ha.raw.get(f"{base}/command/result"), what="an answer")
    assert json.loads(ha.raw[f"{base}/command/result"])["reason"] == "code_required"
    assert door.board.relay.pulses == []

    code = current_code(pin_hasher(cfg, db), p.label)
    ha.operate_lock("unlock", code)
    ha.wait(lambda: ha.state("lock") == "UNLOCKED", what="UNLOCKED")
    ha.wait(lambda: ha.state("lock") == "LOCKED", what="LOCKED again when the pulse ends")
    ha.operate_lock("unlock", code)  # replayed
    ha.wait(lambda: json.loads(ha.raw[f"{base}/command/result"])["reason"] == "code_already_used",
            what="the replay refused")  # fmt: skip
    assert len(door.board.relay.pulses) == 1
    on, off = door.board.relay.pulses[0]
    assert off is not None and off - on == pytest.approx(cfg.access.relay_pulse_s, abs=0.15)

    def audit():
        with db.session() as s:
            return [(e.kind, e.reason, e.detail) for e in s.scalars(
                select(AccessEvent).where(AccessEvent.kind.in_(["granted", "remote_refused"]))
                .order_by(AccessEvent.ts))]  # fmt: skip

    rows = eventually(lambda: len(audit()) == 3 and audit(), what="three audit rows")
    assert rows[0][:2] == ("remote_refused", "code_required")
    assert rows[1][0] == "granted" and rows[1][1] == "remote"
    assert rows[1][2] == {"method": "mqtt", "by": "home-assistant",
                          "source": f"mqtt:{base}/command"}  # fmt: skip
    assert rows[2][:2] == ("remote_refused", "code_already_used")
    # HA's access event for the grant says who and how
    access = ha.wait(lambda: [e for e in ha.events.get("access", []) if e["event_type"] ==
                              "granted"], what="the access event")  # fmt: skip
    assert access[0]["method"] == "mqtt" and access[0]["by"] == "home-assistant"


def test_a_doorbell_press_reaches_mqtt_with_its_snapshot(wired):
    _cfg, door, ha, base = wired
    ha.discovered()
    ha.follow(f"{base}/event/doorbell")
    assert door.simulator is not None
    door.simulator.press_doorbell()
    ring = ha.wait(lambda: ha.events.get("doorbell"), what="the doorbell event")[0]
    assert ring["event_type"] == "ring" and ring["snapshot"].endswith(".jpg")
    image = ha.wait(lambda: ha.images.get("snapshot"), what="the snapshot image")
    assert image[:3] == b"\xff\xd8\xff"  # a JPEG
    assert (door.config.data_dir / ring["snapshot"]).read_bytes() == image
    raw = json.loads(ha.wait(lambda: ha.raw.get(f"{base}/event/doorbell"), what="raw event"))
    assert raw["event"] == "doorbell" and raw["snapshot"] == ring["snapshot"]
