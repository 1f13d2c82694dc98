"""Incident grouping in the outbox: bursts fold into one alert with a count and the best photo."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from appliance.alerts.dispatcher import Dispatcher
from appliance.store.db import Database
from appliance.store.models import OutboxAlert, utcnow

from .support import add_alert, make_config
from .test_dispatcher import Recorder


def _alerts(outbox_db: Database) -> list[OutboxAlert]:
    with outbox_db.session() as s:
        return list(s.scalars(select(OutboxAlert).order_by(OutboxAlert.created_at)))


def test_lockout_then_denied_face_is_one_alert_with_the_face_photo(
    tmp_path: Path, outbox_db: Database
) -> None:
    t0 = utcnow()
    first = add_alert(
        outbox_db, tmp_path, kind="lockout", distance=None, ts=t0, detail="5 wrong codes"
    )
    later = t0 + timedelta(seconds=40)
    second = add_alert(outbox_db, tmp_path, kind="denied_face", distance=0.66, ts=later)
    assert first == second
    [alert] = _alerts(outbox_db)
    assert alert.count == 2 and alert.kind == "lockout" and alert.distance == 0.66
    assert "+denied_face" in alert.detail and "5 wrong codes" in alert.detail
    email = Recorder("email")
    Dispatcher(make_config(tmp_path), outbox_db, channels={"email": email}).run_once()
    [msg] = email.sent
    assert msg.count == 2 and msg.distance == 0.66 and msg.photo_jpeg
    assert "2 events" in msg.summary()


def test_no_photo_never_replaces_a_photo(tmp_path: Path, outbox_db: Database) -> None:
    t0 = utcnow()
    add_alert(outbox_db, tmp_path, kind="denied_face", distance=0.7, ts=t0)
    snap = _alerts(outbox_db)[0].snapshot_path
    add_alert(outbox_db, tmp_path, kind="denied_no_face", photo=False, distance=None, ts=t0)
    [alert] = _alerts(outbox_db)
    assert alert.count == 2 and alert.snapshot_path == snap and alert.distance == 0.7


def test_burst_after_the_first_alert_went_out_collects_in_one_held_follow_up(
    tmp_path: Path, outbox_db: Database
) -> None:
    t0 = utcnow()
    first = add_alert(outbox_db, tmp_path, ts=t0)
    Dispatcher(make_config(tmp_path), outbox_db, channels={"email": Recorder("email")}).run_once()
    follow = add_alert(outbox_db, tmp_path, ts=t0 + timedelta(seconds=10), hold_s=60)
    again = add_alert(outbox_db, tmp_path, ts=t0 + timedelta(seconds=20), hold_s=60)
    assert follow != first and again == follow
    alerts = {a.id: a for a in _alerts(outbox_db)}
    assert alerts[first].state == "delivered" and alerts[first].count == 1
    f = alerts[follow]
    assert f.count == 2 and f.state == "pending" and f.detail.startswith("follow-up to alert")
    assert f.next_attempt_at == t0 + timedelta(seconds=70)  # held to collect the burst
    email = Recorder("email")
    d = Dispatcher(make_config(tmp_path), outbox_db, channels={"email": email})
    d.run_once()
    assert email.sent == []  # still held
    d.clock = lambda: t0 + timedelta(seconds=71)
    d.run_once()
    assert [m.count for m in email.sent] == [2]


def test_outside_the_window_is_a_new_incident(tmp_path: Path, outbox_db: Database) -> None:
    t0 = utcnow()
    a = add_alert(outbox_db, tmp_path, ts=t0, window_s=180)
    b = add_alert(outbox_db, tmp_path, ts=t0 + timedelta(seconds=181), window_s=180)
    assert a != b


def test_duress_forced_and_tamper_are_never_grouped(tmp_path: Path, outbox_db: Database) -> None:
    t0 = utcnow()
    add_alert(outbox_db, tmp_path, ts=t0)
    ids = {
        add_alert(outbox_db, tmp_path, kind=k, ts=t0)
        for k in ("duress", "duress", "forced", "tamper")
    }
    assert len(ids) == 4
    with outbox_db.session() as s:
        assert s.scalar(select(func.count()).select_from(OutboxAlert)) == 5
        urgent = s.scalars(select(OutboxAlert).where(OutboxAlert.kind != "denied_face")).all()
    assert all(a.priority >= 100 and a.incident_key is None for a in urgent)
