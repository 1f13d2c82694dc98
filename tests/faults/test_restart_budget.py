"""Promise 3: the brute-force budget survives restarts, clean or not (and promise 11)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.core import CheckFace, KeyPressed, State, Tick
from appliance.door import Door
from appliance.security import pin_hasher
from appliance.store.central import open_local_replica
from tests.support.waiting import FakeClock

from .doubles import DummyCamera, add_user, make_config, rows

HERE = Path(__file__).resolve().parent
TWO_DAYS = 2 * 86400.0


class NoFace:
    def verify(self, *a, **k):
        raise AssertionError("no face step expected")


@contextlib.contextmanager
def killed_at_exit(config, mode: str) -> Iterator[subprocess.Popen[str]]:
    """A door child process (tests/faults/door_child.py MODE) that the block reads from and
    that is killed with SIGKILL when the block ends: the unclean stop under test."""
    child = subprocess.Popen(
        [sys.executable, str(HERE / "door_child.py"), str(config.data_dir), mode],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(HERE.parents[1])},
    )  # fmt: skip
    try:
        yield child
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert child.stdout is not None
        child.stdout.close()


def _config(data_dir: Path):
    return make_config(data_dir, health={"storage_reserve_mb": 0})


def _door(config, db, wall: FakeClock, mono: FakeClock | None = None) -> Door:
    return Door(config, db, factory=MockFactory(), camera=DummyCamera(), face_engine=NoFace(),
                clock=mono or FakeClock(100.0), wall_clock=wall)  # fmt: skip


def _type(door: Door, keys: str) -> list:
    """Keys straight into the door's handle(), as the loop would; the commands run."""
    out = []
    real = door.controller.handle

    def spy(event):
        cmds = real(event)
        out.extend(cmds)
        return cmds

    door.controller.handle = spy  # type: ignore[method-assign]
    try:
        for k in keys:
            door.handle(KeyPressed(k))
    finally:
        door.controller.handle = real  # type: ignore[method-assign]
    return out


def test_wrong_codes_before_a_restart_count_after_it(tmp_path: Path) -> None:
    """Four wrong codes, a clean restart, one more wrong code: lockout (the window is kept)."""
    config = _config(tmp_path / "var")
    db = open_local_replica(config)
    add_user(db, pin_hasher(config), 1, "1234")
    wall = FakeClock(1_700_000_000.0)
    door = _door(config, db, wall)
    for _ in range(4):
        _type(door, "1*0000#")
    door.close()
    wall.t += 60
    door = _door(config, db, wall, FakeClock(5.0))  # a new process: its monotonic clock restarts
    try:
        _type(door, "1*0000#")
        assert door.controller.state is State.LOCKED_OUT
    finally:
        door.close()
        db.close()


def test_a_lockout_survives_kill_9_and_the_right_code_stays_refused(tmp_path: Path) -> None:
    """Unclean restart: a door process killed with SIGKILL right after its lockout showed comes
    back locked out; the right code is not even checked until the lockout time is over."""
    config = _config(tmp_path / "var")
    db = open_local_replica(config)
    add_user(db, pin_hasher(config), 9, "1234")
    with killed_at_exit(config, "lockout") as child:
        assert child.stdout.readline().strip() == "locked"
    door = _door(config, db, FakeClock(__import__("time").time()))
    try:
        assert door.controller.state is State.LOCKED_OUT
        remaining = door.controller.lockout_remaining
        assert 0 < remaining <= config.access.lockout_s
        out = _type(door, "9*1234#")
        assert not any(isinstance(c, CheckFace) for c in out)
    finally:
        door.close()
        db.close()


def test_wall_clock_step_back_two_days_cannot_lengthen_or_shorten_the_lockout(
    tmp_path: Path,
) -> None:
    """A restart after the wall clock stepped back 2 days: the lockout still holds and lasts at
    most lockout_s from now (a saved deadline in the 'future' is capped, never extended)."""
    config = _config(tmp_path / "var")
    db = open_local_replica(config)
    add_user(db, pin_hasher(config), 1, "1234")
    wall = FakeClock(1_700_000_000.0)
    door = _door(config, db, wall)
    for _ in range(5):
        _type(door, "1*0000#")
    assert door.controller.state is State.LOCKED_OUT
    door.close()
    wall.t -= TWO_DAYS
    door = _door(config, db, wall)
    try:
        assert door.controller.state is State.LOCKED_OUT
        assert door.controller.lockout_remaining == config.access.lockout_s
    finally:
        door.close()
        db.close()


def test_an_unreadable_budget_file_fails_secure(tmp_path: Path) -> None:
    """A corrupt budget file (torn write, bad sector) starts the door locked out for
    lockout_s, never with a fresh budget."""
    config = _config(tmp_path / "var")
    db = open_local_replica(config)
    (config.data_dir / "budget.json").write_text('{"wrong": [1, 2')
    door = _door(config, db, FakeClock(1_700_000_000.0))
    try:
        assert door.controller.state is State.LOCKED_OUT
        assert door.controller.lockout_remaining == config.access.lockout_s
    finally:
        door.close()
        db.close()


def test_one_event_per_lockout_with_the_count_of_codes_refused(tmp_path: Path) -> None:
    """A burst of '#' during a lockout writes no row per press: one lockout event at the start,
    one lockout_ended with the number of codes refused at the end."""
    config = _config(tmp_path / "var")
    db = open_local_replica(config)
    add_user(db, pin_hasher(config), 1, "1234")
    mono = FakeClock(100.0)
    door = _door(config, db, FakeClock(1_700_000_000.0), mono)
    try:
        for _ in range(5):
            _type(door, "1*0000#")
        _type(door, "#" * 600)
        mono.t += config.access.lockout_s + 1
        door.handle(Tick())
        door.flush_batched()
    finally:
        door.close()
        db.close()
    kinds = [k for (k,) in rows(config.replica_path, "SELECT kind FROM access_events ORDER BY ts")]
    assert kinds == ["code_wrong"] * 5 + ["lockout", "lockout_ended"]
    (detail,) = rows(config.replica_path, "SELECT detail FROM access_events "
                     "WHERE kind='lockout_ended'")[0]  # fmt: skip
    assert json.loads(detail)["refused"] == 600


def test_kill_9_during_records_loses_no_committed_event_and_leaves_a_sound_replica(
    tmp_path: Path,
) -> None:
    """SIGKILL while the door is writing events: every event whose commit had returned is in
    the replica, and the replica passes quick_check at the next start."""
    from appliance.store.central import replica_problem

    config = _config(tmp_path / "var")
    open_local_replica(config).close()
    with killed_at_exit(config, "records") as child:
        ids = []
        while len(ids) < 200:
            line = child.stdout.readline()
            assert line, "the child died on its own"
            ids.append(line.strip())
    assert replica_problem(config.replica_path) is None
    stored = {i for (i,) in rows(config.replica_path, "SELECT id FROM access_events")}
    assert set(ids) <= stored


def test_kill_9_during_a_pulse_restarts_locked_with_the_grant_recorded(tmp_path: Path) -> None:
    """SIGKILL while the relay is energised: the next door process drives the relay locked
    before anything else, the grant recorded before the kill is in a sound replica, and
    lock-relay (the unit's ExecStopPost) succeeds on the same config."""
    from appliance.cli import main
    from appliance.store.central import replica_problem

    config = _config(tmp_path / "var")
    db = open_local_replica(config)
    add_user(db, pin_hasher(config), 3, "2468")
    db.close()
    with killed_at_exit(config, "pulse") as child:
        assert child.stdout.readline().strip() == "pulsing"
    assert replica_problem(config.replica_path) is None
    assert rows(config.replica_path, "SELECT kind, user_number FROM access_events") == [
        ("granted", 3)
    ]
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[device]\ndata_dir = "{config.data_dir}"\n[hardware]\npin_factory = "mock"\n')
    assert main(["--config", str(cfg), "lock-relay"]) == 0
    db = open_local_replica(config)
    factory = MockFactory()
    pin = factory.pin(config.hardware.pins.relay)
    pin.function = "output"
    pin.state = True  # a real GPIO line keeps the level the killed process left on it
    door = Door(config, db, factory=factory, camera=DummyCamera(), face_engine=NoFace())
    try:
        assert door.board.relay.locked
        assert pin.state is False
    finally:
        door.close()
        db.close()


def test_the_offline_code_suspension_survives_a_restart(tmp_path: Path) -> None:
    """Three made-up offline guest codes suspend offline codes; a restart (clean, 60 s later)
    keeps the suspension, so a right offline code is refused without being checked."""
    from datetime import UTC, datetime

    from appliance.core import offline as oc
    from appliance.store.guests import offline_key

    config = _config(tmp_path / "var")
    db = open_local_replica(config)
    wall = FakeClock(1_700_000_000.0)
    door = _door(config, db, wall)
    for n in range(3):
        _type(door, f"00*{n:010d}#")
    assert door.controller.offline_suspended_remaining > 0
    door.close()
    wall.t += 60
    door = _door(config, db, wall, FakeClock(5.0))
    try:
        assert door.controller.offline_suspended_remaining > 21000
        today = datetime.fromtimestamp(wall.t, UTC).astimezone().date()
        good = oc.issue(offline_key(pin_hasher(config, db), config.device.id), 0, today, today,
                        today)  # fmt: skip
        _type(door, f"00*{good}#")
        assert [r.reason for r in door.recent[-1:]] == ["offline_suspended"]
    finally:
        door.close()
        db.close()


@pytest.mark.parametrize("made_by", ["loop", "close"])
def test_a_budget_save_the_full_disk_refused_is_made_once_space_returns(
    tmp_path: Path, made_by: str
) -> None:
    """Promise 1's fault under promise 3: the lockout is written when the card has room
    again, retried on the loop's turns ("loop"), or by close when the door is stopped (the
    service's stop, a watchdog restart) before a turn retried it ("close"); a restart after
    that still finds it."""
    from .doubles import fill, free_bytes, small_tmpfs

    with small_tmpfs(tmp_path / "mnt", "4m") as mnt:
        config = make_config(mnt / "var", health={"storage_reserve_mb": 0, "storage_floor_mb": 0})
        db = open_local_replica(config)
        add_user(db, pin_hasher(config), 1, "1234")
        wall, mono = FakeClock(1_700_000_000.0), FakeClock(100.0)
        door = _door(config, db, wall, mono)
        budget = config.data_dir / "budget.json"
        try:
            fill(mnt / "filler")
            assert free_bytes(mnt) == 0
            for _ in range(5):
                _type(door, "1*0000#")
            assert door.controller.state is State.LOCKED_OUT
            assert not budget.exists()  # the disk refused it
            os.remove(mnt / "filler")  # space returns
            if made_by == "loop":
                for _ in range(20):  # 2 s of idle loop turns inside the lockout
                    mono.t += 0.1
                    wall.t += 0.1
                    door.handle(Tick())
                assert budget.exists()
        finally:
            door.close()
        assert json.loads(budget.read_text())["lockout_until"] > wall.t
        door = _door(config, db, wall, FakeClock(3.0))  # the watchdog's restart
        try:
            assert door.controller.state is State.LOCKED_OUT
            assert door.controller.lockout_remaining > door.controller.policy.lockout_s - 5
        finally:
            door.close()
            db.close()


def test_a_wall_clock_step_while_the_door_runs_is_saved_before_a_restart(tmp_path: Path) -> None:
    """A Pi without a clock battery boots with a stale wall clock; NTP steps it forward while
    the door runs. The budget saved before the step is saved again in the new wall time, so a
    restart after the step still counts the lockout from when it began."""
    config = _config(tmp_path / "var")
    db = open_local_replica(config)
    add_user(db, pin_hasher(config), 1, "1234")
    wall, mono = FakeClock(1_700_000_000.0), FakeClock(100.0)  # the stale boot clock
    door = _door(config, db, wall, mono)
    lockout_s = door.controller.policy.lockout_s
    try:
        for _ in range(5):
            _type(door, "1*0000#")
        assert door.controller.state is State.LOCKED_OUT
        mono.t += 10
        wall.t += 10 + 3600  # NTP: one hour forward
        door.handle(Tick())
        assert door.controller.state is State.LOCKED_OUT
        mono.t += 5
        wall.t += 5
    finally:
        door.close()
    door = _door(config, db, wall, FakeClock(3.0))  # power cut, restart 15 s into the lockout
    try:
        assert door.controller.state is State.LOCKED_OUT
        assert abs(door.controller.lockout_remaining - (lockout_s - 15)) < 1.0
    finally:
        door.close()
        db.close()
