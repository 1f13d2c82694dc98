"""Promise 1: storage faults never shorten a pulse and never lose an alert (real tmpfs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from sqlalchemy import text

from appliance.core import MotionDetected
from appliance.door import Door
from appliance.security import pin_hasher
from appliance.store.central import open_local_replica
from tests.alerts.support import email_section
from tests.support.waiting import eventually

from .doubles import (
    FakeSmtp,
    MatchEngine,
    add_user,
    fill,
    frame_camera,
    free_bytes,
    make_config,
    rows,
)

PULSE_S = 2.0


def _door(tmp_path: Path, mnt: Path, fake_smtp: FakeSmtp, **health: float):
    config = make_config(
        mnt / "var",
        access={"relay_pulse_s": PULSE_S},
        alerts={"email": email_section(fake_smtp.port)},
        health={"storage_reserve_mb": 0, "storage_floor_mb": 0, **health},
    )
    db = open_local_replica(config)
    add_user(db, pin_hasher(config), 1, "1234")
    door = Door(
        config, db, factory=MockFactory(), camera=frame_camera(tmp_path), face_engine=MatchEngine()
    )
    return config, db, door


def _truncate_wal(db) -> None:
    """An empty WAL: the next commit needs fresh blocks, so a full disk really refuses it."""
    with db.engine.connect() as c:
        c.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


def _type(door: Door, keys: str) -> None:
    door.press_keys(keys)


def test_full_disk_neither_shortens_the_pulse_nor_loses_the_event_or_alert(
    tmp_path: Path, tmpfs: Path, fake_smtp: FakeSmtp
) -> None:
    """On a data filesystem full to the last byte, a valid code opens the relay for the whole
    pulse; the refused `granted` record waits in memory; a tamper alert that cannot reach the
    outbox still leaves by SMTP with a storage_failed alert; when space returns every held event
    lands in the replica and the directly-sent alerts are not sent a second time."""
    config, db, door = _door(tmp_path, tmpfs, fake_smtp)
    door.start()
    try:
        _truncate_wal(db)
        fill(tmpfs / "filler")
        assert free_bytes(tmpfs) == 0
        _type(door, "1*1234#")
        relay = door.board.relay
        assert eventually(lambda: relay.pulses and relay.pulses[-1][1] is not None, PULSE_S + 3)
        on, off = relay.pulses[0]
        assert len(relay.pulses) == 1
        assert PULSE_S - 0.05 <= off - on <= PULSE_S + 0.5, f"pulse {off - on:.3f}s"
        held = [h.fields["kind"] for h in door.recorder.held]
        assert "granted" in held  # the fault was real: the disk refused the record
        door.simulator.trigger_tamper()
        assert fake_smtp.wait_for(2, 10), fake_smtp.subjects()
        subjects = " ".join(fake_smtp.subjects())
        assert "Tamper" in subjects and "storage failing" in subjects
        assert rows(config.replica_path, "SELECT count(*) FROM outbox") == [(0,)]

        (tmpfs / "filler").unlink()  # space is back
        assert eventually(lambda: door.held_count == 0, 10)
    finally:
        door.close()
        db.close()
    kinds = sorted(k for (k,) in rows(config.replica_path, "SELECT kind FROM access_events"))
    assert kinds == ["granted", "storage_failed", "tamper"]
    outbox = dict(rows(config.replica_path, "SELECT kind, state FROM outbox"))
    assert outbox == {"tamper": "delivered", "storage_failed": "delivered"}
    assert len(fake_smtp.messages) == 2  # nothing was sent twice
    print(f"full_disk pulse_s={off - on:.3f} events_lost=0 direct_mails={len(fake_smtp.messages)} "
          f"outbox_resends=0")  # fmt: skip


def test_reserve_file_makes_room_for_an_alert_on_a_card_full_of_informational_writes(
    tmp_path: Path, tmpfs: Path, fake_smtp: FakeSmtp
) -> None:
    """With a reserve file, a card that informational writes filled still takes the next
    decision or alert at once: the reserve is deleted and the write retried, so the alert is
    in the outbox (not only in memory) and the owner is told by a storage_failed alert."""
    config, db, door = _door(tmp_path, tmpfs, fake_smtp, storage_reserve_mb=0.5)
    door.start()
    try:
        assert eventually(lambda: door.recorder.guard.has_reserve, 5)
        _truncate_wal(db)
        fill(tmpfs / "filler")  # what motion and heartbeats would do, only faster
        door.simulator.trigger_tamper()
        assert eventually(lambda: any(e.kind == "tamper" for e in door.recent), 5)
        tamper = next(e for e in door.recent if e.kind == "tamper")
        assert tamper.alert_id is not None  # written at once, thanks to the reserve
        assert not door.recorder.guard.has_reserve
        assert fake_smtp.wait_for(1, 10)
        assert "storage failing" in " ".join(fake_smtp.subjects())
    finally:
        (tmpfs / "filler").unlink()
        door.close()
        db.close()
    assert rows(config.replica_path, "SELECT kind, state FROM outbox WHERE kind='tamper'") == [
        ("tamper", "pending")
    ]


def test_below_the_floor_informational_events_wait_and_a_low_space_alert_is_raised(
    tmp_path: Path, tmpfs: Path, fake_smtp: FakeSmtp
) -> None:
    """Below health.storage_floor_mb the door raises one low_disk_space alert and keeps
    informational events (door opened/closed, motion) in memory, so the space left goes to
    decisions and alerts; once space is back they are written."""
    config, db, door = _door(
        tmp_path, tmpfs, fake_smtp, storage_floor_mb=1.0, storage_check_interval_s=0.1
    )
    door.start()
    try:
        filler = tmpfs / "filler"
        fill(filler)
        with open(filler, "r+b") as fh:  # leave half a MiB: under the 1 MiB floor
            fh.truncate(filler.stat().st_size - 512 * 1024)
        assert eventually(lambda: any(e.kind == "low_disk_space" for e in door.recent), 5)
        assert door.recorder.guard.low
        door.post(MotionDetected())
        assert eventually(lambda: any(e.kind == "motion" for e in door.recent), 5)
        assert [h.fields["kind"] for h in door.recorder.held] == ["motion"]
        door.simulator.trigger_tamper()
        assert eventually(lambda: any(e.kind == "tamper" for e in door.recent), 5)
        assert rows(config.replica_path, "SELECT kind FROM outbox ORDER BY created_at") == [
            ("low_disk_space",),
            ("tamper",),
        ]
        filler.unlink()
        assert eventually(lambda: door.held_count == 0 and not door.recorder.guard.low, 10)
    finally:
        door.close()
        db.close()
    kinds = [k for (k,) in rows(config.replica_path, "SELECT kind FROM access_events")]
    assert sorted(kinds) == ["low_disk_space", "motion", "tamper"]


def test_the_held_queue_is_bounded_and_drops_informational_events_first(
    tmp_path: Path, fake_smtp: FakeSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-memory queue of refused records never grows past HELD_MAX; when full, the oldest
    informational event goes first and decisions and alerts stay."""
    from appliance.core import Record
    from appliance.door.recorder import Held

    n = 3
    monkeypatch.setattr("appliance.door.recorder.HELD_MAX", n)
    config, db, door = _door(tmp_path, tmp_path, fake_smtp)
    try:
        door.recorder.hold([Held({"kind": "granted"}, Record("granted"))])
        door.recorder.hold([Held({"kind": f"motion{i}"}) for i in range(n)])
        assert [h.fields["kind"] for h in door.recorder.held] == ["granted", "motion1", "motion2"]
        assert door.recorder.held_dropped == 1
        door.recorder.held.clear()
    finally:
        door.close()
        db.close()


def test_a_fault_after_unlock_leaves_the_granted_pulse_to_its_timer(
    tmp_path: Path, fake_smtp: FakeSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug after the Unlock of a grant (here: the GRANTED feedback raising) reaches the loop's
    handler, which does not lock a relay the state machine granted: the pulse lasts its full
    length and then ends by its own timer."""
    from appliance.core.events import Feedback

    config, db, door = _door(tmp_path, tmp_path, fake_smtp)
    real = door.board.signal

    def broken(fb):
        if fb is Feedback.GRANTED:
            raise RuntimeError("LED driver crashed")
        return real(fb)

    monkeypatch.setattr(door.board, "signal", broken)
    door.start()
    try:
        _type(door, "1*1234#")
        relay = door.board.relay
        assert eventually(lambda: relay.pulses and relay.pulses[-1][1] is not None, PULSE_S + 3)
        on, off = relay.pulses[0]
        assert PULSE_S - 0.05 <= off - on <= PULSE_S + 0.5, f"pulse {off - on:.3f}s"
        assert door.alive
    finally:
        door.close()
        db.close()
