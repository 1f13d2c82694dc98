"""kill -9 the dispatcher process at random moments while it delivers; nothing is lost."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from appliance.store.db import Database, sqlite_url
from appliance.store.models import OutboxAlert
from tests.support.loopback import SmtpServer
from tests.support.waiting import eventually

from .support import add_alert

KILLS = 50
KINDS = ("denied_face", "forced", "tamper", "held_open", "duress", "lockout")


def _config(tmp_path: Path, smtp_port: int) -> Path:
    path = tmp_path / "doorward.toml"
    path.write_text(
        f"""
[device]
id = "door-t"
name = "Kill door"
data_dir = "{tmp_path}"

[alerts]
probe_enabled = false
backoff_initial_s = 0.05
backoff_max_s = 0.2
poll_interval_s = 0.02
hourly_cap = 100000

[alerts.email]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
from = "door@example.test"
to = ["owner@example.test"]
timeout_s = 2
""",
        encoding="utf-8",
    )
    return path


def _spawn(config: Path, db_path: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.alert_worker",
                "--config",
                str(config),
                "--db",
                str(db_path),
            ],  # fmt: skip
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )


def _pending(outbox_db: Database) -> int:
    with outbox_db.session() as s:
        return s.scalar(
            select(func.count()).select_from(OutboxAlert).where(OutboxAlert.state == "pending")
        )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_kill_9_loop_delivers_every_alert_once_after_dedupe(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("KILL_SEED", "4")))
    smtp = SmtpServer(delay_s=0.01).start()  # a little slow, so kills land mid-delivery
    db_path = tmp_path / "doorward.db"
    outbox_db = Database.from_url(sqlite_url(db_path))
    outbox_db.migrate()
    config = _config(tmp_path, smtp.port)
    log = tmp_path / "worker.log"
    queued: set[str] = set()
    t0 = time.monotonic()
    try:
        for _ in range(20):
            queued.add(add_alert(outbox_db, tmp_path, kind=rng.choice(KINDS)))
        for _ in range(KILLS):
            proc = _spawn(config, db_path, log)
            # queue more while it runs, then kill at a random moment (start-up or sending)
            deadline = time.monotonic() + rng.uniform(0.3, 1.2)
            while time.monotonic() < deadline:
                if rng.random() < 0.3:
                    queued.add(add_alert(outbox_db, tmp_path, kind=rng.choice(KINDS)))
                time.sleep(rng.uniform(0.01, 0.08))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        assert _pending(outbox_db) > 0 or len(smtp.sink.messages) >= len(queued)
        proc = _spawn(config, db_path, log)
        try:
            eventually(lambda: not _pending(outbox_db), 60, interval=0.1, what="an empty queue")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        smtp.stop()
        outbox_db.close()

    with Database.from_url(sqlite_url(db_path)).session() as s:
        rows = s.scalars(select(OutboxAlert)).all()
        states = {a.id: a.state for a in rows}
    assert set(states) == queued
    assert set(states.values()) == {"delivered"}, log.read_text()[-3000:]
    ids = smtp.sink.message_ids()
    unique = set(ids)
    assert unique == {f"<{a}@door-t.doorward>" for a in queued}  # every alert, nothing extra
    mailbox = tmp_path / "mailbox"
    assert {p.stem for p in mailbox.glob("*.eml")} == queued
    assert list(mailbox.glob("*.tmp")) == []
    con = sqlite3.connect(db_path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    print(
        f"kill-loop kills={KILLS} alerts={len(queued)} received={len(ids)} "
        f"resent_after_kill={len(ids) - len(unique)} s={elapsed:.1f}"
    )
