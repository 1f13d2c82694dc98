"""Device page: status tiles, sync lag and queue depth from the door's local database."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from appliance.store.central import open_central
from appliance.store.models import AccessEvent, Device, OutboxAlert, utcnow
from appliance.store.sync import SyncWorker
from tests.support.waiting import free_port
from web_admin import create_app

from .conftest import ADMIN_PW, login


def _tile(html: str, label: str) -> str:
    """The text of a status tile's <strong>, e.g. _tile(page, "Alert queue") == "2"."""
    m = re.search(rf'<span class="label">{label}</span><strong[^>]*>(.*?)</strong>', html, re.S)
    assert m, f"no {label!r} tile"
    return m.group(1).strip()


def _outbox(db, states: list[str]) -> None:
    with db.session() as s:
        for st in states:
            s.add(OutboxAlert(kind="held_open", state=st))


def test_embedded_default_status(client, db, admin_config) -> None:
    page = client.get("/device/").text
    assert f"<h1>{admin_config.device.name} " in page and admin_config.device.id in page  # one name
    assert _tile(page, "Central database") == "none: this door's own database"
    assert _tile(page, "Alerts waiting") == "0"
    assert _tile(page, "Last heartbeat") == "never"
    assert _tile(page, "Door") == "No report yet"  # no door loop in this process, none reported
    assert _tile(page, "GSM modem") == "not configured"
    assert 'id="panel"' not in page  # the door panel needs simulated hardware here

    _outbox(db, ["pending", "pending", "delivered", "failed"])
    seen = utcnow().replace(microsecond=0)
    with db.session() as s:
        s.add(Device(id=admin_config.device.id, name="Front door", last_seen=seen))
    page = client.get("/device/").text
    assert _tile(page, "Alerts waiting") == "2"  # only what still waits for delivery
    assert re.fullmatch(r"just now|\d+ s ago", _tile(page, "Last heartbeat"))
    st = client.get("/device/status.json").get_json()
    assert st["queue_depth"] == 2 and st["sync_lag_s"] is None and st["sync_running"] is False
    assert st["in_process"] is False and st["recent"] == []


@pytest.fixture
def central(admin_config, tmp_path) -> Iterator:
    """A central database of its own (SQLite here; the MariaDB path is tested in tests/store)."""
    db = open_central(admin_config, f"sqlite:///{tmp_path / 'central.db'}", migrate=True)
    yield db
    db.close()


def test_status_reads_the_doors_local_database_and_sync_state(admin_config, db, central) -> None:
    """The page on the central database beside a door: queue depth and sync lag come from the
    door's replica, the heartbeat from the central devices table."""
    from web_admin.accounts import create_account

    create_account(central, "admin", ADMIN_PW, "admin")  # accounts live centrally here
    worker = SyncWorker(admin_config, central, db, interval_s=60)
    app = create_app(config=admin_config, db=central, local_db=db, sync=worker,
                     test_config={"TESTING": True, "BOOTSTRAP_ADMIN": False})  # fmt: skip
    c = app.test_client()
    assert login(c).status_code == 302

    _outbox(db, ["pending", "pending", "pending", "delivered"])  # the door's own outbox
    _outbox(central, ["pending"])  # not this door's queue
    with db.session() as s:
        s.add(AccessEvent(device_id=admin_config.device.id, kind="granted", user_number=1))
    page = c.get("/device/").text
    assert _tile(page, "Alerts waiting") == "3"
    assert _tile(page, "Central database") == "not synced yet"
    assert "1 events waiting" in page
    assert _tile(page, "Last heartbeat") == "never"

    report = worker.run_once()
    assert report.ok, report.error
    page = c.get("/device/").text
    lag = _tile(page, "Central database")
    assert re.fullmatch(r"synced \d+ s ago", lag) and int(lag.split()[1]) < 30, lag
    assert "events waiting" not in page  # pushed to the central table
    assert _tile(page, "Last heartbeat") != "never"  # the sync worker's heartbeat
    st = c.get("/device/status.json").get_json()
    assert st["sync_running"] is True and st["sync"]["pending_events"] == 0
    assert st["queue_depth"] == 3

    # a last good round an hour ago shows as an hour of lag
    earlier = SyncWorker(admin_config, central, db, clock=lambda: utcnow() - timedelta(hours=1))
    assert earlier.run_once().ok
    lag = _tile(c.get("/device/").text, "Central database")
    assert lag in ("synced 1 h ago", "synced 59 min 59 s ago", "synced 1 h 1 min ago"), lag


def test_sync_error_is_shown(admin_config, db, accounts) -> None:
    dead = open_central(admin_config, f"mysql+pymysql://root@127.0.0.1:{free_port()}/doorward")
    worker = SyncWorker(admin_config, dead, db, interval_s=60)
    app = create_app(config=admin_config, db=db, sync=worker,
                     test_config={"TESTING": True, "BOOTSTRAP_ADMIN": False})  # fmt: skip
    c = app.test_client()
    assert login(c).status_code == 302
    report = worker.run_once()
    assert not report.ok
    page = c.get("/device/").text
    assert _tile(page, "Central database") == "not synced yet"
    assert "last error: pull:" in page and "Connection refused" in page
    dead.close()
