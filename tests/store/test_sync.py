"""Sync against the real MariaDB: users down by change number, events up exactly once, offline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text, update

from appliance.core import Verdict
from appliance.store.models import AccessEvent, Device, FaceTemplate, User
from appliance.store.models_sync import SyncTombstone, UserAccess
from appliance.store.repository import ReplicaCredentials, TemplateCache
from tests.store.sync_helpers import add_user, queue_events
from tests.support.waiting import eventually, free_port

pytestmark = pytest.mark.mysql


def count_events(db, device_id: str | None = None) -> int:
    q = select(func.count()).select_from(AccessEvent)
    if device_id:
        q = q.where(AccessEvent.device_id == device_id)
    with db.session() as s:
        return s.execute(q).scalar_one()


def test_migrations_from_empty_mariadb_reach_every_head(central_url, make_config) -> None:
    from alembic.script import ScriptDirectory

    from appliance.store.central import open_central
    from appliance.store.migrate import alembic_config, current

    db = open_central(make_config(), central_url)
    try:
        with db.engine.connect() as c:
            assert c.execute(text("SHOW TABLES")).all() == []
        db.migrate()
        heads = set(ScriptDirectory.from_config(alembic_config(db.engine)).get_heads())
        assert {"0006_alert_reached", "0005_access_policies"} <= heads  # 0005, 0006 follow
        assert current(db.engine) == heads
        with db.engine.connect() as c:
            tables = {r[0] for r in c.execute(text("SHOW TABLES"))}
            seq = c.execute(text("SELECT value FROM sync_seq WHERE id = 1")).scalar_one()
        assert {"users", "face_templates", "access_events", "sync_seq", "user_access"} <= tables
        assert {"sync_tombstones", "outbox"} <= tables
        assert seq == 0
        db.migrate()  # a second run is a no-op
        assert current(db.engine) == heads
    finally:
        db.close()


def test_enrolled_centrally_is_visible_at_the_door_after_one_sync(
    site, hasher, faces_dir, face_engine
) -> None:
    from appliance.enroll import enroll_user

    photo = sorted((faces_dir / "people" / "obama").glob("*.jpg"))[0]
    door = ReplicaCredentials(site.replica, hasher, device_id=site.config.device.id)
    cache = TemplateCache(site.replica)
    assert cache.gallery()[0].shape[0] == 0
    enrolled = enroll_user(
        site.central, face_engine, hasher, number=42, name="Barack", pin="4242", photos=[photo]
    )
    assert door.check(42, "4242").verdict is Verdict.WRONG  # not synced yet

    report = site.worker.run_once()

    assert report.ok, report.error
    assert report.pulled["users"] == 1 and report.pulled["face_templates"] == 1
    result = door.check(42, "4242")
    assert result.verdict is Verdict.OK and result.user_id == enrolled.id
    with site.central.session() as s:
        central_enc = s.scalars(select(FaceTemplate.encoding)).one()
    templates = cache.for_user(enrolled.id)
    assert templates.shape == (1, 128)
    assert templates[0].tobytes() == FaceTemplate(encoding=central_enc).vector().tobytes()
    # the door's own replica contains the device row, the central one now knows the door
    with site.central.session() as s:
        dev = s.get(Device, "door-1")
        assert dev is not None and dev.last_sync_at is not None and dev.pending_events == 0


def test_deactivation_and_deletion_reach_the_door_on_the_next_sync(site, hasher) -> None:
    h = hasher.hash("1111")
    uid = add_user(site.central, 7, h, templates=2)
    other = add_user(site.central, 8, h)
    door = ReplicaCredentials(site.replica, hasher)
    site.worker.run_once()
    assert door.check(7, "1111").verdict is Verdict.OK

    with site.central.session() as s:
        s.get(User, uid).active = False
    assert door.check(7, "1111").verdict is Verdict.OK  # the replica has not heard yet
    report = site.worker.run_once()
    assert report.ok and report.pulled["users"] == 1
    assert door.check(7, "1111").verdict is Verdict.WRONG

    # deleted centrally: tombstone removes the user and (cascade) its templates at the door;
    # the number is then reused by a new person in the same batch
    with site.central.session() as s:
        s.delete(s.get(User, other))
    new = add_user(site.central, 8, hasher.hash("2222"))
    report = site.worker.run_once()
    assert report.ok, report.error
    assert report.deleted == 1
    with site.replica.session() as s:
        assert s.get(User, other) is None
        assert s.get(User, new).number == 8
        assert s.scalar(select(func.count()).where(FaceTemplate.user_id == other)) == 0
    assert door.check(8, "1111").verdict is Verdict.WRONG
    assert door.check(8, "2222").verdict is Verdict.OK


def test_numbers_swapped_between_two_users_arrive_consistently(site, hasher) -> None:
    a = add_user(site.central, 1, hasher.hash("1111"))
    b = add_user(site.central, 2, hasher.hash("2222"))
    site.worker.run_once()
    with site.central.session() as s:
        s.get(User, a).number = 99
        s.flush()
        s.get(User, b).number = 1
        s.flush()
        s.get(User, a).number = 2
    assert site.worker.run_once().ok
    door = ReplicaCredentials(site.replica, hasher)
    assert door.check(1, "2222").verdict is Verdict.OK
    assert door.check(2, "1111").verdict is Verdict.OK


def test_bulk_orm_update_and_delete_are_stamped(site, hasher) -> None:
    from sqlalchemy import delete

    h = hasher.hash("1234")
    for n in range(10, 15):
        add_user(site.central, n, h)
    site.worker.run_once()
    with site.central.session() as s:
        s.execute(update(User).where(User.number >= 13).values(active=False))
        s.execute(delete(User).where(User.number == 10))
    report = site.worker.run_once()
    assert report.pulled["users"] == 2 and report.deleted == 1
    with site.replica.session() as s:
        active = dict(s.execute(select(User.number, User.active)).all())
    assert active == {11: True, 12: True, 13: False, 14: False}


@pytest.mark.parametrize("bulk", ["update", "delete"])
def test_bulk_write_by_predicate_stamps_rows_that_match_only_after_its_snapshot(
    site, hasher, bulk: str
) -> None:
    """An admin transaction read a snapshot (a listing) before another admin made user 5 a
    contractor; its "deactivate / delete every contractor" still changes user 5 (InnoDB
    writes match the latest committed rows), and so must stamp or tombstone it too."""
    from sqlalchemy import delete

    h = hasher.hash("4321")
    uid = add_user(site.central, 5, h, role="resident")
    add_user(site.central, 6, h, role="contractor")
    assert site.worker.run_once().ok
    with site.central.sessions() as t1, t1.begin():
        t1.scalar(select(func.count()).select_from(User))  # the listing: snapshot taken
        with site.central.session() as t2:
            t2.get(User, uid).role = "contractor"
            t2.flush()
            before = t2.get(User, uid).version
        assert site.worker.run_once().ok  # the door has user 5 as a contractor
        if bulk == "update":
            t1.execute(update(User).where(User.role == "contractor").values(active=False))
        else:
            t1.execute(delete(User).where(User.role == "contractor"))
    with site.central.session() as s:
        if bulk == "update":
            assert s.get(User, uid).version > before
        else:
            stones = select(SyncTombstone.row_id).where(SyncTombstone.table_name == "users")
            assert uid in set(s.scalars(stones))
    report = site.worker.run_once()
    assert report.ok and not report.reset  # reached by its change number, not a reload
    with site.central.session() as s:
        central = dict(s.execute(select(User.number, User.active)).all())
    with site.replica.session() as s:
        replica = dict(s.execute(select(User.number, User.active)).all())
    assert replica == central
    assert ReplicaCredentials(site.replica, hasher).check(5, "4321").verdict is not Verdict.OK


def test_access_rules_limit_doors_and_hours(site, make_config, hasher) -> None:
    h = hasher.hash("5555")
    night = add_user(site.central, 20, h)
    front = add_user(site.central, 21, h)
    with site.central.session() as s:
        # Mon-Fri 22:00-06:00 at every door; the other user: front door only, any time
        s.add(UserAccess(user_id=night, weekdays=0b0011111, start_minute=1320, end_minute=360))
        s.add(UserAccess(user_id=front, device_id="door-1"))
    assert site.worker.run_once().ok

    def at(when: datetime, device: str = "door-1") -> Verdict:
        creds = ReplicaCredentials(site.replica, hasher, lambda: when, device_id=device, tz=UTC)
        return creds.check(20, "5555").verdict

    monday_23 = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    assert at(monday_23) is Verdict.OK
    assert at(monday_23 + timedelta(hours=6)) is Verdict.OK  # Tuesday 05:00, window of Monday
    assert at(monday_23 + timedelta(hours=13)) is Verdict.WRONG  # Tuesday 12:00
    saturday_23 = datetime(2026, 3, 7, 23, 0, tzinfo=UTC)
    assert at(saturday_23) is Verdict.WRONG
    assert at(saturday_23 - timedelta(hours=23)) is Verdict.OK  # Saturday 00:00 = Friday night

    side = ReplicaCredentials(site.replica, hasher, device_id="door-2")
    here = ReplicaCredentials(site.replica, hasher, device_id="door-1")
    assert here.check(21, "5555").verdict is Verdict.OK
    assert side.check(21, "5555").verdict is Verdict.WRONG
    # the rule removed centrally: that user may use every door again
    with site.central.session() as s:
        s.delete(s.scalars(select(UserAccess).where(UserAccess.user_id == front)).one())
    assert site.worker.run_once().deleted == 1
    assert side.check(21, "5555").verdict is Verdict.OK


def test_template_cache_notices_a_replaced_template(site, hasher) -> None:
    import numpy as np

    uid = add_user(site.central, 30, hasher.hash("3030"))
    site.worker.run_once()
    cache = TemplateCache(site.replica)
    before = cache.for_user(uid).copy()
    with site.central.session() as s:
        t = s.scalars(select(FaceTemplate).where(FaceTemplate.user_id == uid)).one()
        t.encoding = FaceTemplate.pack(np.full(128, 0.01))
    site.worker.run_once()
    after = cache.for_user(uid)
    assert not np.array_equal(before, after)
    assert np.allclose(after, 0.01, atol=1e-6)


def test_mysql_unreachable_door_decides_from_replica_and_queues(site, make_config, hasher) -> None:

    from appliance.store.central import open_central
    from appliance.store.sync import SyncWorker, sync_status

    add_user(site.central, 5, hasher.hash("5050"))
    assert site.worker.run_once().ok
    dead_port = free_port()  # a port nobody listens on
    dead = open_central(site.config, f"mysql+pymysql://root@127.0.0.1:{dead_port}/nothing")
    worker = SyncWorker(site.config, dead, site.replica)
    try:
        door = ReplicaCredentials(site.replica, hasher)
        assert door.check(5, "5050").verdict is Verdict.OK
        assert door.check(5, "0000").verdict is Verdict.WRONG
        ids = queue_events(site.replica, "door-1", 25)
        report = worker.run_once()
        assert not report.ok and "2003" in report.error  # Can't connect to MySQL server
        assert report.pending == 25
        status = sync_status(site.replica)
        assert status["pending_events"] == 25 and status["last_error"]
        assert status["lag_s"] is not None  # last success was the first sync
        # the server reachable again (the real URL): everything arrives, once
        report = site.worker.run_once()
        assert report.ok and report.pushed == 25 and report.pending == 0
        with site.central.session() as s:
            got = set(s.scalars(select(AccessEvent.id)))
        assert got == set(ids)
    finally:
        dead.close()


def test_network_cut_10000_events_queued_offline_sync_exactly_once(
    make_config, central_url, relay, hasher
) -> None:
    from appliance.store.central import open_central, open_local_replica
    from appliance.store.sync import SyncWorker

    config = make_config("door-cut", batch_size=1000)
    central = open_central(config, central_url, migrate=True)
    via_relay = open_central(config, central_url.replace(":3306/", f":{relay.port}/"))
    replica = open_local_replica(config)
    worker = SyncWorker(config, via_relay, replica)
    try:
        uid = add_user(central, 9, hasher.hash("9999"))
        assert worker.run_once().ok
        relay.cut()  # the network is gone
        door = ReplicaCredentials(replica, hasher)
        assert door.check(9, "9999").verdict is Verdict.OK
        ids = queue_events(replica, "door-cut", 10_000)
        with central.session() as s:  # meanwhile the admin deactivates the user
            s.get(User, uid).active = False
        down = worker.run_once()
        assert not down.ok and down.pending == 10_000
        assert door.check(9, "9999").verdict is Verdict.OK  # still the replica's view
        assert count_events(central) == 0

        relay.restore()
        up = worker.run_once()
        assert up.ok, up.error
        assert up.pushed == 10_000 and up.duplicates == 0 and up.pending == 0
        assert door.check(9, "9999").verdict is Verdict.WRONG  # within one round
        assert count_events(central, "door-cut") == 10_000
        with central.session() as s:
            assert set(s.scalars(select(AccessEvent.id))) == set(ids)
        # a crash after the central commit but before the local mark: the batch is repeated
        with replica.engine.begin() as c:
            c.execute(
                update(AccessEvent.__table__)
                .where(AccessEvent.__table__.c.id.in_(ids[:3000]))
                .values(synced_at=None)
            )
        again = worker.run_once()
        assert again.ok and again.pushed == 0 and again.duplicates == 3000
        assert count_events(central) == 10_000
    finally:
        for db in (via_relay, central, replica):
            db.close()


def test_central_restored_from_older_backup_triggers_full_reload(site, hasher) -> None:
    h = hasher.hash("1212")
    add_user(site.central, 1, h)
    gone = add_user(site.central, 2, h)
    site.worker.run_once()
    # the central database goes back in time: user 2 never existed, the sequence is lower
    with site.central.engine.begin() as c:
        c.execute(text("DELETE FROM face_templates WHERE user_id = :u"), {"u": gone})
        c.execute(text("DELETE FROM users WHERE id = :u"), {"u": gone})
        c.execute(text("UPDATE sync_seq SET value = 1"))
    report = site.worker.run_once()
    assert report.ok and report.reset
    with site.replica.session() as s:
        assert s.scalars(select(User.number)).all() == [1]
        assert s.scalar(select(func.count()).select_from(SyncTombstone)) == 0


def test_sync_worker_thread_applies_a_deactivation_within_an_interval(site, hasher) -> None:
    uid = add_user(site.central, 77, hasher.hash("7777"))
    site.worker.start()
    door = ReplicaCredentials(site.replica, hasher)
    eventually(lambda: door.check(77, "7777").verdict is Verdict.OK, what="enrollment at the door")
    with site.central.session() as s:
        s.get(User, uid).active = False
    site.worker.trigger()
    eventually(lambda: door.check(77, "7777").verdict is not Verdict.OK, what="deactivation")
    site.worker.stop()
    assert not site.worker.alive


def test_worker_refuses_the_embedded_default(make_config) -> None:
    from appliance.store.central import open_local_replica
    from appliance.store.sync import SyncError, SyncWorker

    config = make_config()
    db = open_local_replica(config)
    try:
        with pytest.raises(SyncError, match="central database itself"):
            SyncWorker(config, db, db)
    finally:
        db.close()


def test_tiny_batches_across_tables_converge_to_the_central_state(
    make_config, central_url, hasher
) -> None:
    from appliance.store.central import open_central, open_local_replica
    from appliance.store.sync import SyncWorker

    config = make_config("door-small", batch_size=3)
    central = open_central(config, central_url, migrate=True)
    replica = open_local_replica(config)
    worker = SyncWorker(config, central, replica)
    try:
        h = hasher.hash("1357")
        ids = [add_user(central, n, h, templates=1 + n % 3) for n in range(1, 21)]
        with central.session() as s:
            for uid in ids[::4]:
                s.add(UserAccess(user_id=uid, device_id="door-small"))
        with central.session() as s:
            for uid in ids[::3]:
                s.delete(s.get(User, uid))
            for uid in ids[1::5]:
                u = s.get(User, uid)
                if u is not None:
                    u.name = "renamed"
        report = worker.run_once()
        assert report.ok, report.error

        def snapshot(db) -> tuple:
            with db.session() as s:
                return (
                    s.execute(select(User.id, User.number, User.name, User.version)).all(),
                    s.execute(select(FaceTemplate.id, FaceTemplate.user_id)).all(),
                    s.execute(select(UserAccess.id, UserAccess.user_id)).all(),
                )

        assert snapshot(replica) == snapshot(central)
        with central.session() as s:
            head = s.execute(text("SELECT value FROM sync_seq")).scalar_one()
        assert report.cursor == head
    finally:
        central.close()
        replica.close()


def test_start_sync_worker_for_run(make_config, central_url, hasher) -> None:
    from appliance.store.central import open_central, open_local_replica
    from appliance.store.sync import start_sync_worker

    config = make_config("door-run")
    replica = open_local_replica(config)
    central = open_central(config, central_url, migrate=True)
    try:
        assert start_sync_worker(config, None, replica) is None  # embedded default
        off = config.with_overrides(sync={"enabled": False})
        assert start_sync_worker(off, central_url, replica) is None
        add_user(central, 3, hasher.hash("3333"))
        worker = start_sync_worker(config, central_url, replica)
        assert worker is not None and worker.alive
        door = ReplicaCredentials(replica, hasher)
        eventually(lambda: door.check(3, "3333").verdict is Verdict.OK, what="user 3 synced")
        worker.stop()
        assert not worker.alive and worker.status()["lag_s"] is not None
    finally:
        central.close()
        replica.close()


def _fail_inserts_into(engine, table: str, codes: list[int]) -> list[int]:
    """Make the next len(codes) INSERTs into `table` on `engine` fail on the real server's
    connection with those MySQL error codes (as InnoDB fails a deadlock victim: 1213, or a
    lock wait that timed out: 1205); returns the codes raised so far."""
    import pymysql
    from sqlalchemy import event

    raised: list[int] = []

    @event.listens_for(engine, "before_cursor_execute")
    def fail(conn, cursor, statement, parameters, context, executemany) -> None:
        words = statement.split(None, 3)
        if codes and words[:2] == ["INSERT", "INTO"] and words[2].strip("`") == table:
            code = codes.pop(0)
            raised.append(code)
            raise pymysql.err.OperationalError(code, f"injected MySQL error {code}")

    return raised


def test_a_push_picked_as_deadlock_victim_is_retried_and_lands_once(site) -> None:
    """Two pushers racing on the same UUIDs can deadlock in InnoDB; the one picked as victim
    (or whose lock wait timed out) retries the batch: events and guest-code uses alike arrive
    exactly once and are marked pushed."""
    from appliance.store.models import new_uuid, utcnow
    from appliance.store.models_policies import GuestUse

    assert site.worker.run_once().ok
    ids = queue_events(site.replica, "door-1", 40)
    uses = [new_uuid() for _ in range(5)]
    with site.replica.session() as s:
        s.add_all(GuestUse(id=u, device_id="door-1", ts=utcnow()) for u in uses)
    raised_events = _fail_inserts_into(site.central.engine, "access_events", [1213, 1205])
    raised_uses = _fail_inserts_into(site.central.engine, "guest_uses", [1213])

    report = site.worker.run_once()

    assert report.ok, report.error
    assert raised_events == [1213, 1205] and raised_uses == [1213]  # the faults did happen
    assert report.pushed == 40 and report.duplicates == 0 and report.pending == 0
    assert report.guest_uses_pushed == 5
    with site.central.session() as s:
        assert sorted(s.scalars(select(AccessEvent.id))) == sorted(ids)
        assert sorted(s.scalars(select(GuestUse.id))) == sorted(uses)
    with site.replica.session() as s:
        assert s.scalar(select(func.count()).where(GuestUse.synced_at.is_(None))) == 0


def test_a_push_failing_for_good_marks_nothing_pushed(site) -> None:
    """An error that is not a lock conflict (here: the server refusing the insert for a
    full table, 1114), or a deadlock every retry: the round fails, names the error, and every
    event is still queued for the next round, which delivers it once."""
    from appliance.store.sync import RETRIES

    assert site.worker.run_once().ok
    ids = queue_events(site.replica, "door-1", 10)
    for codes in ([1114], [1213] * RETRIES):
        raised = _fail_inserts_into(site.central.engine, "access_events", list(codes))
        report = site.worker.run_once()
        assert not report.ok and str(codes[0]) in report.error
        assert raised == codes and report.pending == 10
        assert count_events(site.central) == 0
    report = site.worker.run_once()
    assert report.ok and report.pushed == 10 and report.pending == 0
    with site.central.session() as s:
        assert sorted(s.scalars(select(AccessEvent.id))) == sorted(ids)
