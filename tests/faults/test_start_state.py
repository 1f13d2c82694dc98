"""Inputs already at their alarm level when the door process starts (after a power cut, a
watchdog restart or kill -9, while the door is propped open or the tamper loop is cut): their
edges came before anyone listened, so the door reads their levels at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.core import Tick
from appliance.door import Door
from appliance.hardware.simulator import DoorSimulator
from appliance.store.central import open_local_replica
from tests.support.waiting import FakeClock

from .doubles import DummyCamera, make_config

HELD_OPEN_S = 30.0


class NoFace:
    def verify(self, *a, **k):
        raise AssertionError("no face step expected")


def started_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, door_open: bool,
                 tamper: bool) -> tuple[Door, FakeClock]:  # fmt: skip
    """A door whose pins read as given from the moment it is built (the simulator's resting
    levels, then the door opened and/or the tamper loop cut before the Board listens)."""
    rest = DoorSimulator.set_resting

    def resting_then(sim: DoorSimulator) -> None:
        rest(sim)
        closed_low = sim.config.door_contact_closed_when == "low"
        if door_open:
            sim._drive(sim._door, closed=False, closed_low=closed_low)
        if tamper:
            alarm_high = sim.config.tamper_alarm_when == "high"
            (sim._tamper.drive_high if alarm_high else sim._tamper.drive_low)()

    monkeypatch.setattr(DoorSimulator, "set_resting", resting_then)
    config = make_config(tmp_path / "var", access={"held_open_s": HELD_OPEN_S},
                         health={"storage_reserve_mb": 0})  # fmt: skip
    db = open_local_replica(config)
    clock = FakeClock(100.0)
    door = Door(config, db, factory=MockFactory(), camera=DummyCamera(), face_engine=NoFace(),
                clock=clock)  # fmt: skip
    return door, clock


def kinds(door: Door) -> list[tuple[str, str | None]]:
    return [(e.kind, e.reason) for e in door.recent]


def test_a_door_open_at_start_is_known_open_and_alerts_held_open_not_forced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    door, clock = started_with(monkeypatch, tmp_path, door_open=True, tamper=False)
    try:
        assert door.board.door_is_open
        door.pump()
        assert door.controller.door_open
        assert kinds(door) == [("door_opened", "open_at_start")]  # how it opened is unknown
        clock.t += HELD_OPEN_S + 1
        door.handle(Tick())
        held = [e for e in door.recent if e.kind == "held_open"]
        assert len(held) == 1 and held[0].alert_id
        assert "forced" not in [k for k, _ in kinds(door)]
    finally:
        door.close()
        door.db.close()


def test_a_tamper_loop_cut_at_start_is_alerted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    door, _clock = started_with(monkeypatch, tmp_path, door_open=False, tamper=True)
    try:
        assert door.board.tamper_alarm
        door.pump()
        tamper = [e for e in door.recent if e.kind == "tamper"]
        assert len(tamper) == 1 and tamper[0].alert_id
        assert not door.controller.door_open
    finally:
        door.close()
        door.db.close()


def test_a_door_at_rest_at_start_records_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    door, _clock = started_with(monkeypatch, tmp_path, door_open=False, tamper=False)
    try:
        assert door.pump() == 0 and kinds(door) == []
    finally:
        door.close()
        door.db.close()
