"""Done-when of issue #16 for SMS, on a real door: "UNLOCK <code>" from an allowed number on
the pty modem opens the door once (the keypad's pulse, audited), and the same message sent
again does nothing. Wired by `doorward run`'s own function (start_outward)."""

from __future__ import annotations

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
from tests.support.sim_modem import SimModem
from tests.support.waiting import eventually

OWNER = "+447700900123"


def test_an_sms_unlock_opens_the_real_door_once_and_the_same_sms_again_does_nothing(config, db):
    with SimModem() as modem:
        cfg = config.with_overrides(
            alerts={"gsm": {"port": modem.port, "to": [OWNER], "timeout_s": 3}},
            remote={"sms_commands": True, "sms_poll_s": 0.1, "sms_listen_s": 0.5},
            access={"relay_pulse_s": 1.0},
        )
        door = Door(cfg, db, factory=MockFactory(), camera=ReplayCamera([]), face_engine=object())
        parts = Parts()
        door.start()
        try:
            start_outward(cfg, door, db, parts, with_sync=False)
            p = add_principal(db, kind="owner", name="ada", phone=OWNER, may_unlock=True)
            text = f"UNLOCK {current_code(pin_hasher(cfg, db), p.label)}"
            modem.deliver(OWNER, text)
            eventually(lambda: [s for s in modem.sent if s.number == OWNER],
                       what="the door's answer")  # fmt: skip
            eventually(lambda: door.board.relay.pulses and door.board.relay.pulses[0][1],
                       what="one whole pulse")  # fmt: skip
            modem.deliver(OWNER, text)  # the same message again
            eventually(lambda: len([s for s in modem.sent if s.number == OWNER]) == 2,
                       what="the answer to the replay")  # fmt: skip
        finally:
            parts.stop_all(budget_s=10)
            door.close()
    assert [s.text for s in modem.sent] == ["UNLOCK: one pulse given",
                                            "UNLOCK: refused (code_already_used)"]  # fmt: skip
    assert len(door.board.relay.pulses) == 1
    on, off = door.board.relay.pulses[0]
    assert off - on == pytest.approx(1.0, abs=0.15)
    with db.session() as s:
        rows = [(e.kind, e.reason, e.detail) for e in s.scalars(
            select(AccessEvent).where(AccessEvent.kind.in_(["granted", "remote_refused"]))
            .order_by(AccessEvent.ts))]  # fmt: skip
    assert rows == [
        ("granted", "remote", {"method": "sms", "by": "ada", "source": f"sms:{OWNER}"}),
        ("remote_refused", "code_already_used",
         {"command": "unlock", "by": "ada", "source": f"sms:{OWNER}", "via": "sms",
          "known": True}),
    ]  # fmt: skip
