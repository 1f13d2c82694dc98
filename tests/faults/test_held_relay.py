"""A held relay (fire release, schedule, auto-relock) is energised on a lease the door loop
renews: it stays released while the loop turns, and locks by itself when the loop stops."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.door import Door
from appliance.hardware.relay import LockRelay
from appliance.store.central import open_local_replica
from tests.support.waiting import eventually

from .doubles import DummyCamera, add_user, make_config

# how late a lapsed lease may lock, past the lease: a timer thread's wake-up on a loaded
# machine (a lease renewed once more, or twice as long, would take 0.3 s more)
LEASE_SLACK_S = 0.25


class NoFace:
    def verify(self, *a, **k):
        raise AssertionError("no face step expected")


def test_a_hold_that_is_not_renewed_locks_by_itself() -> None:
    relay = LockRelay(17, pin_factory=MockFactory())
    try:
        relay.hold(0.3)
        assert not relay.locked
        eventually(lambda: relay.locked, 3.0, what="the lease to lapse")
        on_at, off_at = relay.pulses[-1]
        assert off_at is not None
        # the lease, not longer (slack for the timer thread's wake-up on a busy machine)
        assert 0.3 <= off_at - on_at <= 0.3 + LEASE_SLACK_S
    finally:
        relay.close()


@pytest.fixture
def fire_door(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("appliance.door.loop.HOLD_LEASE_S", 0.3)
    monkeypatch.setattr("appliance.door.commands.HOLD_LEASE_S", 0.3)
    config = make_config(tmp_path / "var", hardware={"pins": {"fire_input": 26}},
                         health={"storage_reserve_mb": 0})  # fmt: skip
    db = open_local_replica(config)
    door = Door(config, db, factory=MockFactory(), camera=DummyCamera(), face_engine=NoFace())
    yield door
    door.close()
    db.close()


def test_the_fire_input_holds_the_relay_while_the_loop_turns_and_relocks_when_it_clears(
    fire_door: Door,
) -> None:
    door = fire_door
    sim = door.simulator
    assert sim is not None
    door.start()
    sim.fire_alarm(True)
    eventually(lambda: not door.board.relay.locked, 5.0, what="the fire release")
    # many leases later (the loop renews it on every turn) it is still released
    since = time.monotonic()
    eventually(lambda: door.last_loop_at > since + 1.5, 10.0, what="1.5 s of loop turns")
    assert not door.board.relay.locked and door.controller.held_reason == "fire"
    assert len(door.board.relay.pulses) == 1
    sim.fire_alarm(False)
    eventually(lambda: door.board.relay.locked, 5.0, what="the relock after the alarm")
    kinds = [e.kind for e in door.recent]
    assert "fire_alarm" in kinds and "fire_cleared" in kinds


def test_a_stopped_loop_lets_a_held_relay_lock_within_the_lease(fire_door: Door) -> None:
    door = fire_door
    sim = door.simulator
    assert sim is not None
    door.start()
    sim.fire_alarm(True)
    eventually(lambda: not door.board.relay.locked, 5.0, what="the fire release")
    door.stop()  # the loop no longer turns (a hang, a crash of the thread)
    stopped_at = time.monotonic()  # the last renewal was before this: the loop has ended
    eventually(lambda: door.board.relay.locked, 3.0, what="the lease to lapse")
    off_at = door.board.relay.pulses[-1][1]
    assert off_at is not None and off_at - stopped_at <= 0.3 + LEASE_SLACK_S


def test_set_lockdown_from_another_thread_is_enforced_and_stored(fire_door: Door) -> None:
    from appliance.core import KeyPressed
    from appliance.security import pin_hasher
    from appliance.store.lockdown import read_lockdown

    door = fire_door
    add_user(door.db, pin_hasher(door.config), 5, "2468")  # not an admin
    door.start()
    door.set_lockdown(True, by="mqtt-user", source="mqtt")
    assert door.lockdown_active
    eventually(lambda: door.controller.lockdown, 5.0, what="the loop taking the lockdown")
    assert read_lockdown(door.db)["on"] is True
    rec = next(e for e in door.recent if e.kind == "lockdown_on")
    assert rec.detail == {"by": "mqtt-user", "source": "mqtt"} and rec.alert_id
    for k in "5*2468#":  # the user's right code: refused for the lockdown, no face asked
        door.post(KeyPressed(k))
    eventually(lambda: any(e.kind == "lockdown_refused" for e in door.recent), 10.0)
    refused = next(e for e in door.recent if e.kind == "lockdown_refused")
    assert refused.user_number == 5 and door.board.relay.locked
    assert not any(e.kind == "granted" for e in door.recent)
    door.set_lockdown(False, by="mqtt-user", source="mqtt")
    eventually(lambda: not door.controller.lockdown, 5.0)


@pytest.fixture
def event_stream(fire_door: Door):
    """Someone tapping an ignored key about 20 times a second (a chattering sensor does the
    same): the loop always finds an event waiting, never an idle turn."""
    import threading

    from appliance.core import KeyPressed

    stop = threading.Event()

    def tap() -> None:
        while not stop.wait(0.05):  # the stream's own pace, not a wait for the door
            fire_door.post(KeyPressed("A"))

    thread = threading.Thread(target=tap, daemon=True)
    yield thread
    stop.set()
    thread.join(5)


def test_a_stream_of_events_does_not_keep_a_schedule_window_open_after_its_end(
    fire_door: Door, event_stream
) -> None:
    from appliance.core.schedule import Active

    door = fire_door
    window = {"open": True}
    door.schedule.active = lambda now: (  # type: ignore[method-assign]
        Active("mon-9to17@2026-12-07", False) if window["open"] else None
    )
    door.start()
    eventually(lambda: not door.board.relay.locked, 5.0, what="the schedule window's hold")
    event_stream.start()
    window["open"] = False  # 17:00: the window ends
    eventually(lambda: door.board.relay.locked, 5.0, what="the relay locked at the window's end")
    assert not door.controller.relay_held


def test_a_stream_of_events_does_not_keep_a_stored_lockdown_from_the_door(
    fire_door: Door, event_stream
) -> None:
    from appliance.store.lockdown import write_lockdown

    door = fire_door
    door.start()
    event_stream.start()
    write_lockdown(door.db, True, by="admin", source="web")  # the admin service's process
    eventually(lambda: door.controller.lockdown, 5.0, what="the stored lockdown enforced")
