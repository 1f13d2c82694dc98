"""The door service with its real loop thread, simulated pins and a replica on disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from appliance.cli import main
from appliance.core import DoorOpened, Record
from appliance.door import Door
from appliance.hardware.camera import ReplayCamera
from tests.support.waiting import eventually


class NoFaceEngine:
    """Stands in for the face engine where a test never reaches the face step."""

    def verify(self, *a, **k):
        raise AssertionError("face step not expected")


@pytest.fixture
def camera(tmp_path: Path) -> ReplayCamera:
    import cv2

    p = tmp_path / "frame.png"
    cv2.imwrite(str(p), np.full((120, 160, 3), 90, np.uint8))
    return ReplayCamera([p])


def make_door(config, db, camera) -> Door:
    return Door(config, db, factory=MockFactory(), camera=camera, face_engine=NoFaceEngine())


def rows(config, sql: str) -> list[tuple]:
    with sqlite3.connect(config.replica_path) as conn:
        return conn.execute(sql).fetchall()


def test_loop_thread_turns_pin_events_into_recorded_alerts(config, db, camera) -> None:
    door = make_door(config, db, camera)
    door.start()
    try:
        door.simulator.open_door()  # nobody was granted: forced
        assert eventually(lambda: any(e.kind == "forced" for e in door.recent))
        door.simulator.close_door()
        door.simulator.trigger_tamper()
        assert eventually(lambda: any(e.kind == "tamper" for e in door.recent))
    finally:
        door.close()
    assert rows(config, "SELECT kind FROM outbox ORDER BY created_at") == [("forced",), ("tamper",)]
    snap = rows(config, "SELECT snapshot_path FROM access_events WHERE kind='forced'")[0][0]
    assert (config.data_dir / snap).read_bytes()[:2] == b"\xff\xd8"


def test_keys_typed_on_the_pins_reach_the_state_machine(config, db, camera) -> None:
    door = make_door(config, db, camera)
    door.start()
    try:
        door.press_keys("9*0000#")
        assert eventually(lambda: any(e.kind == "code_wrong" for e in door.recent))
    finally:
        door.close()
    assert rows(config, "SELECT kind, user_number FROM access_events") == [("code_wrong", 9)]


def test_event_and_alert_commit_together_or_not_at_all(config, db, camera, monkeypatch) -> None:
    door = make_door(config, db, camera)

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr("appliance.door.recorder.enqueue_alert", broken)
    door.recorder.record(Record("forced", alert=True))  # a storage fault never reaches the loop
    assert rows(config, "SELECT count(*) FROM access_events") == [(0,)]
    assert rows(config, "SELECT count(*) FROM outbox") == [(0,)]
    assert [h.fields["kind"] for h in door.recorder.held] == ["forced", "storage_failed"]
    monkeypatch.undo()  # the disk takes writes again: the held event lands with its alert
    door.close()
    assert rows(config, "SELECT kind FROM access_events ORDER BY ts") == [
        ("forced",),
        ("storage_failed",),
    ]
    assert rows(config, "SELECT kind FROM outbox ORDER BY created_at") == [
        ("forced",),
        ("storage_failed",),
    ]


def test_a_bug_in_the_loop_leaves_the_door_locked(config, db, camera, monkeypatch) -> None:
    door = make_door(config, db, camera)
    door.start()
    door.board.relay.unlock(30)
    real = door.controller.handle

    def explode(event):
        if isinstance(event, DoorOpened):
            raise RuntimeError("bug")
        return real(event)

    monkeypatch.setattr(door.controller, "handle", explode)
    door.post(DoorOpened())
    try:
        assert eventually(lambda: door.board.relay.locked)
        assert door.alive  # and the loop carries on
    finally:
        door.close()


def test_close_locks_the_relay(config, db, camera) -> None:
    door = make_door(config, db, camera)
    door.board.relay.unlock(30)
    pin = door.factory.pin(config.hardware.pins.relay)
    assert pin.state is True
    door.close()
    assert pin.state is False


def test_lock_relay_command(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[hardware]\npin_factory = "mock"\n')
    assert main(["--config", str(cfg), "lock-relay"]) == 0
    assert '"relay": "locked"' in capsys.readouterr().out


def lose_and_restore(door: Door, set_broken, checks: int) -> None:
    """Health checks one second apart: fine, then `checks` failures, then fine again."""
    from appliance.health.worker import HealthWorker

    now = [0.0]
    worker = HealthWorker(door, clock=lambda: now[0])
    try:
        worker.run_once()  # first heartbeat; the device answers
        set_broken(True)
        for _ in range(checks):
            now[0] += 1
            worker.run_once()
        set_broken(False)
        now[0] += 1
        worker.run_once()
        door.pump()
    finally:
        door.close()


class FlakyCamera(ReplayCamera):
    broken = False

    def read(self):
        if self.broken:
            from appliance.hardware.camera import CameraError

            raise CameraError("camera unplugged")
        return super().read()


def test_health_worker_records_heartbeats_and_camera_loss(config, db, tmp_path) -> None:
    import cv2

    p = tmp_path / "f.png"
    cv2.imwrite(str(p), np.full((50, 50, 3), 10, np.uint8))
    cam = FlakyCamera([p])
    health = config.health.replace(
        heartbeat_interval_s=60, device_check_interval_s=1, device_loss_after=2
    )
    cfg = config.replace(health=health)
    door = Door(cfg, db, factory=MockFactory(), camera=cam, face_engine=NoFaceEngine())
    lose_and_restore(door, lambda broken: setattr(cam, "broken", broken), checks=3)
    kinds = [k for (k,) in rows(cfg, "SELECT kind FROM access_events ORDER BY ts")]
    assert kinds == ["heartbeat", "camera_lost", "camera_restored"]
    assert rows(cfg, "SELECT kind FROM outbox") == [("camera_lost",)]


def test_watchdog_health_needs_a_turning_loop(config, db, camera) -> None:
    door = make_door(config, db, camera)
    assert not door.healthy
    door.start()
    try:
        assert eventually(lambda: door.healthy)
    finally:
        door.close()
    assert not door.healthy


def test_health_worker_alerts_when_the_gsm_modem_stops_answering(config, db, camera) -> None:
    from appliance.config import GsmConfig
    from tests.support.sim_modem import SimModem

    with SimModem() as modem:
        gsm = GsmConfig.convert({"port": modem.port, "to": ["+447700900123"], "timeout_s": 2})
        health = config.health.replace(
            device_check_interval_s=1, device_loss_after=2, heartbeat_interval_s=3600
        )
        cfg = config.replace(alerts=config.alerts.replace(gsm=gsm), health=health)
        door = Door(cfg, db, factory=MockFactory(), camera=camera, face_engine=NoFaceEngine())
        lose_and_restore(
            door, lambda broken: setattr(modem, "mode", "no_answer" if broken else "ok"), checks=2
        )
    kinds = [k for (k,) in rows(cfg, "SELECT kind FROM access_events ORDER BY ts")]
    assert kinds == ["heartbeat", "modem_lost", "modem_restored"]
    assert rows(cfg, "SELECT kind FROM outbox") == [("modem_lost",)]
