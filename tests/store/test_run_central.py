"""`doorward run` as a real process against the central MariaDB: the door decides from its
replica, the sync worker brings a user enrolled centrally down, and events go up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.support.waiting import eventually, free_port

pytestmark = [pytest.mark.mysql, pytest.mark.faces]


def test_run_syncs_a_central_enrollment_down_and_events_up(
    tmp_path: Path, central_url: str, faces_dir: Path
) -> None:
    port = free_port()
    data = tmp_path / "var"
    cfg = tmp_path / "doorward.toml"
    cfg.write_text(
        f'[device]\nid = "door-run"\ndata_dir = "{data}"\n'
        '[hardware]\npin_factory = "mock"\n'
        f"[admin]\nport = {port}\n[sync]\ninterval_s = 0.5\n",
        encoding="utf-8",
    )
    env = dict(os.environ, DOORWARD_ADMIN_PASSWORD="stone river cobalt 1", DOORWARD_PEPPER="fleet")
    base = [sys.executable, "-m", "appliance", "--config", str(cfg), "--db", central_url]
    # enroll into the central database (not the door's replica)
    photo = faces_dir / "people" / "obama" / "obama1.jpg"
    subprocess.run(
        [*base, "enroll", "--number", "44", "--name", "Central", "--pin", "4444",
         "--photo", str(photo)],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    proc = subprocess.Popen(
        [*base, "run", "--no-terminal-keypad"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    replica = create_engine(f"sqlite:///{data / 'doorward.db'}")
    central = create_engine(central_url)
    try:

        def replica_has_user() -> bool:
            try:
                with replica.connect() as c:
                    return c.execute(text("SELECT count(*) FROM users WHERE number = 44")).scalar()
            except Exception:
                return False

        eventually(replica_has_user, timeout=30, what="user enrolled centrally reaches the replica")

        def central_has_event() -> bool:
            with central.connect() as c:
                return bool(
                    c.execute(
                        text("SELECT count(*) FROM access_events WHERE device_id = 'door-run'")
                    ).scalar()
                )

        # the door's own events (its start-up heartbeat) travel up to the central table
        eventually(
            central_has_event, timeout=30, what="an event of the door reaches the central db"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /login HTTP/1.0\r\nHost: x\r\n\r\n")
            assert b"200 OK" in s.recv(200)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        replica.dispose()
        central.dispose()
    assert proc.returncode == 0, out
    assert "event=dispatcher_started" in out
