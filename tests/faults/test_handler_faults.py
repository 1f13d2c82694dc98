"""A fault inside one event's handling (the replica cannot answer a code check, or a bug)
loses nothing the same turn had decided, and leaves the relay safe."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.core import DoorOpened, KeyPressed
from appliance.door import Door
from appliance.security import pin_hasher
from appliance.store.central import open_local_replica
from tests.support.waiting import FakeClock

from .doubles import DummyCamera, add_user, make_config

HELD_OPEN_S = 30.0


class NoFace:
    def verify(self, *a, **k):
        raise AssertionError("no face step expected")


@pytest.fixture
def door(tmp_path: Path):
    config = make_config(tmp_path / "var", access={"held_open_s": HELD_OPEN_S,
                         "entry_grace_s": 0.0}, health={"storage_reserve_mb": 0})  # fmt: skip
    db = open_local_replica(config)
    add_user(db, pin_hasher(config), 1, "1234")
    clock = FakeClock(100.0)
    d = Door(config, db, factory=MockFactory(), camera=DummyCamera(), face_engine=NoFace(),
             clock=clock)  # fmt: skip
    yield d, clock
    d.close()
    db.close()


def test_a_locked_replica_at_the_code_check_is_a_recorded_refusal(door, monkeypatch) -> None:
    d, _clock = door

    def locked(user_number: int, pin: str):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(d.controller._credentials, "check", locked)
    for k in "1*1234#":
        d.handle(KeyPressed(k))
    assert [(e.kind, e.reason) for e in d.recent] == [("code_wrong", "check_failed")]
    assert d.board.relay.locked and not d.board.relay.pulses


def test_a_handler_bug_still_records_the_held_open_alert_that_fell_due(door) -> None:
    d, clock = door
    d.handle(DoorOpened())  # forced, and it stays open
    clock.t += HELD_OPEN_S
    with pytest.raises(ValueError, match="unknown key"):
        d.handle(KeyPressed("x"))  # the loop logs this and carries on
    held = [e for e in d.recent if e.kind == "held_open"]
    assert len(held) == 1 and held[0].alert_id
    assert d.board.relay.locked
