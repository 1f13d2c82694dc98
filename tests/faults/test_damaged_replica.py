"""Promise 2: the door never starts silently on a damaged replica (empty, truncated, corrupt)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.store.central import DamagedReplica, open_local_replica, replica_problem

from .doubles import make_config, rows


def _good_replica(data_dir: Path) -> Path:
    config = make_config(data_dir)
    db = open_local_replica(config)
    db.close()
    for suffix in ("-wal", "-shm"):  # checkpointed on close: the main file is the database
        Path(f"{config.replica_path}{suffix}").unlink(missing_ok=True)
    return config.replica_path


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _truncated(p: Path) -> None:
    os.truncate(p, p.stat().st_size // 2 + 100)


def _garbage_page(p: Path) -> None:
    data = bytearray(p.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 65536
    start = page * (len(data) // page // 2)  # a page in the middle of the file
    data[start : start + page] = os.urandom(page)
    p.write_bytes(bytes(data))


def _bad_header(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[:16] = b"not a database!!"
    p.write_bytes(bytes(data))


DAMAGE = {"empty": _empty, "truncated": _truncated, "garbage_page": _garbage_page,
          "bad_header": _bad_header}  # fmt: skip


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_start_up_on_a_damaged_replica_is_one_clear_error(
    tmp_path: Path, damage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`doorward run` on an empty, truncated, page-corrupted or header-corrupted replica exits 2
    with one line naming the file and the way out; the file is left as it was (no fresh,
    empty database in its place)."""
    data_dir = tmp_path / "var"
    path = _good_replica(data_dir)
    DAMAGE[damage](path)
    before = path.read_bytes()
    assert replica_problem(path) is not None
    cfg = tmp_path / "doorward.toml"
    cfg.write_text(f'[device]\ndata_dir = "{data_dir}"\n[hardware]\npin_factory = "mock"\n')
    code = main(["--config", str(cfg), "run", "--no-admin", "--no-terminal-keypad"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert str(path) in err[0] and "Restore" in err[0]
    assert path.read_bytes() == before


def test_a_sound_replica_passes_quick_check(tmp_path: Path) -> None:
    """The check does not cry wolf: a freshly migrated replica is sound."""
    assert replica_problem(_good_replica(tmp_path / "var")) is None


def test_with_a_central_database_a_damaged_replica_is_rebuilt_from_it(tmp_path: Path) -> None:
    """With a central database configured, the damaged file is moved aside (kept for its
    unsynced events), an empty replica is created and one sync round refills its users."""
    from appliance.security import PinHasher
    from appliance.store.central import open_central
    from appliance.store.sync import SyncWorker

    from .doubles import add_user

    config = make_config(tmp_path / "var")
    central_url = f"sqlite:///{tmp_path / 'central.db'}"
    central = open_central(config, central_url, migrate=True)
    add_user(central, PinHasher("p"), 7, "1234")
    path = _good_replica(config.data_dir)
    _garbage_page(path)
    with pytest.raises(DamagedReplica, match=str(path)):
        open_local_replica(config)
    db = open_local_replica(config, central=central_url)
    try:
        assert db.rebuilt_from is not None and db.rebuilt_from.exists()
        report = SyncWorker(config, central, db).run_once()
        assert report.ok, report.error
    finally:
        db.close()
        central.close()
    assert rows(path, "SELECT number FROM users") == [(7,)]
    assert replica_problem(path) is None


def _corrupt_table(path: Path, table: str) -> None:
    """Garbage over the root page of `table` (its other pages, and every other table's,
    stay readable)."""
    with sqlite3.connect(path) as conn:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,))
        page_no = root.fetchone()[0]
        page = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    start = (page_no - 1) * page
    data[start : start + page] = os.urandom(page)
    path.write_bytes(bytes(data))


def _door_history(config) -> dict[str, list[str]]:
    """What only a door has: 40 events not yet pushed (and one already pushed), a pending
    alert with one channel delivered and one pending, an alert already delivered, a guest
    use not yet pushed. Returns the ids that must come through a rebuild."""
    from datetime import timedelta

    from appliance.store.models import AccessEvent, OutboxAlert, utcnow
    from appliance.store.models_alerts import AlertDelivery
    from appliance.store.models_policies import GuestUse

    db = open_local_replica(config)
    now = utcnow()
    with db.session() as s:
        events = [AccessEvent(device_id="door-t", kind="denied_face", ts=now) for _ in range(40)]
        s.add_all(events)
        s.add(AccessEvent(id="pushed", device_id="door-t", kind="granted", synced_at=now))
        s.flush()
        s.add(OutboxAlert(id="pending-alert", event_id=events[0].id, kind="denied_face"))
        s.add(OutboxAlert(id="done-alert", kind="tamper", state="delivered"))
        s.flush()
        s.add(AlertDelivery(alert_id="pending-alert", channel="email", state="delivered",
                            delivered_at=now))  # fmt: skip
        s.add(AlertDelivery(alert_id="pending-alert", channel="sms", state="pending",
                            next_attempt_at=now + timedelta(seconds=5)))  # fmt: skip
        s.add(GuestUse(id="use-1", guest_code_id=3, device_id="door-t", ts=now))
        ids = [e.id for e in events]
    db.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{config.replica_path}{suffix}").unlink(missing_ok=True)
    return {"events": ids}


def test_a_rebuild_keeps_what_only_the_door_had(tmp_path: Path) -> None:
    """A damaged replica (its users table unreadable) rebuilt from the central database: the
    unsynced events, the pending alert with both its channels' states, and the unsynced guest
    use are copied into the new replica; what is already central or settled is not."""
    from appliance.store.central import open_central

    config = make_config(tmp_path / "var")
    central_url = f"sqlite:///{tmp_path / 'central.db'}"
    open_central(config, central_url, migrate=True).close()
    want = _door_history(config)
    path = config.replica_path
    _corrupt_table(path, "users")
    assert replica_problem(path) is not None
    db = open_local_replica(config, central=central_url)
    try:
        assert db.salvaged is not None
        assert db.salvaged["copied"] == {"access_events": 40, "outbox": 1,
                                         "alert_deliveries": 2, "guest_uses": 1}  # fmt: skip
        assert db.salvaged["errors"] == {}
    finally:
        db.close()
    copied = sorted(r[0] for r in rows(path, "SELECT id FROM access_events"))
    assert copied == sorted(want["events"])
    assert rows(path, "SELECT id, state FROM outbox") == [("pending-alert", "pending")]
    assert sorted(rows(path, "SELECT channel, state FROM alert_deliveries")) == [
        ("email", "delivered"), ("sms", "pending")]  # fmt: skip
    assert rows(path, "SELECT id, synced_at FROM guest_uses") == [("use-1", None)]


def test_a_rebuild_copies_the_readable_rest_when_the_events_table_is_damaged(
    tmp_path: Path,
) -> None:
    """The events table's root page is garbage: its rows are lost (said, by table); the
    pending alert (no longer linked to its lost event) and the guest use still come through."""
    config = make_config(tmp_path / "var")
    central_url = f"sqlite:///{tmp_path / 'central.db'}"
    from appliance.store.central import open_central

    open_central(config, central_url, migrate=True).close()
    _door_history(config)
    _corrupt_table(config.replica_path, "access_events")
    db = open_local_replica(config, central=central_url)
    try:
        assert db.salvaged is not None
        assert "access_events" in db.salvaged["errors"]
        assert db.salvaged["copied"]["outbox"] == 1
        assert db.salvaged["copied"]["guest_uses"] == 1
    finally:
        db.close()
    assert rows(config.replica_path, "SELECT id, event_id FROM outbox") == [("pending-alert", None)]
