"""The Pi layout: the door (`doorward run --no-admin`) and the admin page in two processes that
share one database; the page shows the door's state and latest snapshot from it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np

from appliance.store.models import AccessEvent, utcnow
from appliance.store.models_state import DoorState, DoorStateWriter, read_state, write_state
from appliance.store.snapshots import SnapshotStore
from tests.support.waiting import eventually


def _tile(html: str, label: str) -> str:
    m = re.search(rf'<span class="label">{label}</span><strong[^>]*>(.*?)</strong>', html, re.S)
    assert m, f"no {label!r} tile"
    return m.group(1).strip()


def test_the_writer_writes_on_change_and_every_refresh(db) -> None:
    status = {"state": "idle", "locked": True}
    w = DoorStateWriter(db, "door-1", lambda: dict(status), refresh_s=60.0)
    last, since = w.tick(None, 0.0, 100.0)
    assert w.writes == 1 and read_state(db, "door-1")[0] == status
    last, since = w.tick(last, since, 101.0)  # unchanged: no write (the SD card is spared)
    assert w.writes == 1
    status["locked"] = False
    last, since = w.tick(last, since, 102.0)
    assert w.writes == 2 and read_state(db, "door-1")[0]["locked"] is False
    last, since = w.tick(last, since, 162.5)  # unchanged, but a minute passed: still alive
    assert w.writes == 3


def test_the_page_in_its_own_process_shows_the_doors_reported_state(client, db, admin_config):
    status = {"state": "locked_out", "locked": True, "door_open": False,
              "lockout_remaining_s": 172.1}  # fmt: skip
    write_state(db, admin_config.device.id, status)
    page = client.get("/device/").text
    assert _tile(page, "Keypad") == "Keypad locked out" and "2 min 52 s left" in page
    assert _tile(page, "Lock") == "Locked" and _tile(page, "Door") == "Closed"
    assert _tile(page, "Door process") == "Running"
    with db.session() as s:
        s.get(DoorState, admin_config.device.id).reported_at = utcnow() - timedelta(minutes=10)
    page = client.get("/device/").text
    assert _tile(page, "Door process") == "Not reporting" and "reported 10 min" in page
    st = client.get("/device/status.json").get_json()
    assert st["reported"] is True and st["report_stale"] is True and st["in_process"] is False


def test_the_page_shows_the_latest_snapshot_from_the_shared_database(client, db, admin_config):
    snaps = SnapshotStore(admin_config.data_dir)
    old = snaps.save(np.full((48, 64, 3), 30, np.uint8))
    new = snaps.save(np.full((48, 64, 3), 200, np.uint8))
    with db.session() as s:
        s.add(AccessEvent(device_id=admin_config.device.id, kind="granted", user_number=1,
                          snapshot_path=old, ts=utcnow() - timedelta(minutes=5)))  # fmt: skip
        s.add(AccessEvent(device_id=admin_config.device.id, kind="denied_face", user_number=2,
                          snapshot_path=new, ts=utcnow()))  # fmt: skip
    page = client.get("/device/").text
    latest = r'<section class="card" id="latest-snapshot">.*?<img class="latest-snap" src="([^"]+)"'
    m = re.search(latest, page, re.S)
    assert m and new.removeprefix("snapshots/") in m.group(1), page[-3000:]
    with client.get(m.group(1)) as img:
        assert img.status_code == 200 and img.data[:2] == b"\xff\xd8"
    assert "Face mismatch" in page and "user 2 (not enrolled)" in page


def test_a_real_door_process_reports_to_a_page_in_another(tmp_path: Path) -> None:
    """`doorward run --no-admin` in its own process writes its state; a page built on the same
    database (as doorward admin would be) shows it."""
    from appliance.config import parse_config
    from appliance.store.central import open_local_replica
    from web_admin import create_app
    from web_admin.accounts import create_account

    from .conftest import ADMIN_PW, login

    data = tmp_path / "data"
    cfg = tmp_path / "door.toml"
    cfg.write_text(f'[device]\ndata_dir = "{data}"\n[hardware]\npin_factory = "mock"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARD_")}
    env["DOORWARD_PEPPER"] = "pi-layout-test-pepper"
    log = (tmp_path / "door.log").open("w")
    door = subprocess.Popen(
        [sys.executable, "-m", "appliance", "--config", str(cfg), "run", "--no-admin"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        config = parse_config({"device": {"data_dir": str(data)}}, source="test")
        running = lambda: "running" in (tmp_path / "door.log").read_text() or door.poll()  # noqa: E731
        eventually(running, timeout=120, what="the door process to start")
        assert door.poll() is None, (tmp_path / "door.log").read_text()[-3000:]
        db = open_local_replica(config)
        eventually(lambda: read_state(db, config.device.id), timeout=90, what="a state report")
        create_account(db, "admin", ADMIN_PW, "admin")
        app = create_app(config=config, db=db, test_config={"TESTING": True,
                                                            "BOOTSTRAP_ADMIN": False})  # fmt: skip
        c = app.test_client()
        assert login(c).status_code == 302
        page = c.get("/device/").text
        assert _tile(page, "Keypad") == "Ready" and _tile(page, "Lock") == "Locked"
        assert _tile(page, "Door process") == "Running"
        db.close()
    finally:
        door.send_signal(signal.SIGTERM)
        rc = door.wait(timeout=30)
        log.close()
    assert rc == 0, (tmp_path / "door.log").read_text()[-3000:]
