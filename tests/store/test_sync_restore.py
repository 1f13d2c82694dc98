"""A central database restored from an older backup, on the real MariaDB: the door notices even
when edits made after the restore bring the change counter back to or past its cursor, and the
full reload that follows never blocks the door's own writes behind the central link."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlalchemy import select, text

from appliance.core import Verdict
from appliance.store.models import User
from appliance.store.models_sync import SyncState
from appliance.store.repository import ReplicaCredentials
from appliance.store.sync import SyncWorker
from tests.store.sync_helpers import add_user

pytestmark = pytest.mark.mysql


def restore_backup(central, *, seq: int, drop: list[int]) -> None:
    """What restoring the nightly backup does to the rows the tests look at: users added since
    are gone (with their templates), the change counter is back at the backup's value."""
    with central.engine.begin() as c:
        for uid in drop:
            c.execute(text("DELETE FROM face_templates WHERE user_id = :u"), {"u": uid})
            c.execute(text("DELETE FROM users WHERE id = :u"), {"u": uid})
        c.execute(text("UPDATE sync_seq SET value = :v"), {"v": seq})


def replica_users(site) -> dict[int, tuple[bool, int]]:
    with site.replica.session() as s:
        return {n: (a, v) for n, a, v in s.execute(select(User.number, User.active, User.version))}


def test_restore_then_edits_up_to_the_old_cursor_is_noticed(site, hasher) -> None:
    """Restored, then edited until the counter equals the door's cursor again: the last change
    the door applied (mallory's template, version 4) is gone, so the door reloads."""
    h = hasher.hash("1212")
    alice = add_user(site.central, 1, h)  # versions 1, 2; the backup is taken here
    mallory = add_user(site.central, 2, h)  # versions 3, 4
    assert site.worker.run_once().ok
    restore_backup(site.central, seq=2, drop=[mallory])
    with site.central.session() as s:
        s.get(User, alice).active = False  # version 3
    with site.central.session() as s:
        s.get(User, alice).name = "Alice (left)"  # version 4: head == the door's cursor
    report = site.worker.run_once()
    assert report.ok and report.reset
    door = ReplicaCredentials(site.replica, hasher)
    assert door.check(1, "1212").verdict is not Verdict.OK  # deactivated after the restore
    assert door.check(2, "1212").verdict is not Verdict.OK  # the restore removed mallory
    assert replica_users(site) == {1: (False, 4)}
    again = site.worker.run_once()
    assert again.ok and not again.reset  # settled: no reload loop


def test_restore_then_edits_past_the_cursor_of_the_last_applied_row_is_noticed(
    site, hasher
) -> None:
    """The row the door applied last was itself edited after the restore, past the door's
    cursor, so it looks like an ordinary later change; the whole-replica comparison still
    finds the user the restore removed."""
    h = hasher.hash("3434")
    alice = add_user(site.central, 1, h)  # versions 1, 2; the backup is taken here
    mallory = add_user(site.central, 2, h)  # versions 3, 4
    with site.central.session() as s:
        s.get(User, alice).name = "Alice A."  # version 5: the door's last applied change
    assert site.worker.run_once().ok
    restore_backup(site.central, seq=2, drop=[mallory])
    for i in range(4):  # versions 3..6: alice's row is at 6, above the door's cursor 5
        with site.central.session() as s:
            row = s.get(User, alice)
            row.active = False
            row.name = f"Alice {i}"
    report = site.worker.run_once()
    assert report.ok and report.reset
    assert replica_users(site) == {1: (False, 6)}
    assert ReplicaCredentials(site.replica, hasher).check(2, "3434").verdict is not Verdict.OK


def test_later_changes_to_the_last_applied_row_are_not_a_restore(site, hasher) -> None:
    """The last change applied being superseded (edited, deleted) is ordinary sync: no reload."""
    h = hasher.hash("5656")
    add_user(site.central, 1, h)
    bob = add_user(site.central, 2, h)
    assert site.worker.run_once().ok
    with site.replica.engine.connect() as r:
        anchor = json.loads(r.execute(select(SyncState.value).where(SyncState.key == "anchor"))
                            .scalar_one())  # fmt: skip
    assert anchor["version"] == 4 and anchor["table"] == "face_templates"
    with site.central.session() as s:
        s.get(User, bob).templates[0].quality = 0.5  # the anchor row, now at version 5
    report = site.worker.run_once()
    assert report.ok and not report.reset and report.pulled["face_templates"] == 1
    with site.central.session() as s:
        s.delete(s.get(User, bob))  # the anchor row deleted: tombstones above the cursor
    report = site.worker.run_once()
    assert report.ok and not report.reset and report.deleted >= 1
    assert sorted(replica_users(site)) == [1]
    for _ in range(2):
        assert not site.worker.run_once().reset


def test_full_reload_never_holds_the_replica_write_lock_across_central_round_trips(
    site, hasher
) -> None:
    """While the reload is still reading the central database (a slow link: each batch a
    round trip), the door can write to its replica at once (its decision records must not wait
    out busy_timeout), and readers see the old replica whole, never half replaced."""
    h = hasher.hash("1111")
    for n in range(1, 9):
        add_user(site.central, n, h)
    assert site.worker.run_once().ok
    gone = add_user(site.central, 9, h)
    assert site.worker.run_once().ok
    restore_backup(site.central, seq=16, drop=[gone])
    worker = SyncWorker(site.config, site.central, site.replica, batch_size=4)
    real_fetch = worker._fetch
    seen: list[tuple[int, int]] = []

    def fetch_and_meanwhile_write(c, cursor, r):
        # the door, between two central round trips of the reload: no waiting for a lock
        door = sqlite3.connect(site.config.replica_path, timeout=0)
        try:
            door.execute("BEGIN IMMEDIATE")  # raises 'database is locked' if sync holds it
            door.execute(
                "INSERT INTO sync_state (key, value) VALUES ('probe', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(cursor),),
            )
            door.commit()
            users = door.execute("SELECT count(*) FROM users").fetchone()[0]
        finally:
            door.close()
        seen.append((cursor, users))
        return real_fetch(c, cursor, r)

    worker._fetch = fetch_and_meanwhile_write  # type: ignore[method-assign]
    report = worker.run_once()
    assert report.ok and report.reset, report.error
    assert [cursor for cursor, _ in seen] == [0, 4, 8, 12, 16]  # 16 rows in batches of 4
    assert {users for _, users in seen} == {9}  # the old replica, whole, until the one write
    assert sorted(replica_users(site)) == list(range(1, 9))
    with site.replica.engine.connect() as r:
        probe = r.execute(select(SyncState.value).where(SyncState.key == "probe")).scalar_one()
    assert probe == "16"  # every write the door made meanwhile is kept
