"""Owns the sync benchmark: 10,000 users down, 10,000 events up, deactivation-to-door latency.

Run: `.venv/bin/python -m bench.store [--server URL] [--users N] [--events N]`.
It creates a private database on the server (dropped afterwards), talks to it through a
loopback relay that counts wire bytes, and prints one JSON object. Figures are reported next
to a baseline measured in the same run (a plain SELECT / INSERT of the same rows), so they can
be compared across machines as ratios.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import MetaData, insert, select, text
from sqlalchemy.engine import make_url

from appliance.config import Config
from appliance.store.central import open_central, open_local_replica
from appliance.store.db import Database
from appliance.store.models import AccessEvent, FaceTemplate, User, new_uuid, utcnow
from appliance.store.repository import ReplicaCredentials
from appliance.store.sync import SyncWorker
from tests.support.netproxy import TcpRelay

DEFAULT_SERVER = "mysql+pymysql://root@127.0.0.1:3306/"


def _progress(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _seed_users(central: Database, n: int, pin_hash: str, chunk: int = 1000) -> None:
    rng = np.random.default_rng(7)
    for start in range(0, n, chunk):
        with central.session() as s:
            for number in range(start + 1, min(n, start + chunk) + 1):
                v = rng.normal(size=128)
                s.add(
                    User(
                        number=number,
                        name=f"Person {number}",
                        pin_hash=pin_hash,
                        templates=[FaceTemplate(encoding=FaceTemplate.pack(v / np.linalg.norm(v)))],
                    )
                )
        _progress(f"central users {min(n, start + chunk)}/{n}")


def _file_bytes(path: Path) -> int:
    """The SQLite file with its write-ahead log (committed rows may still sit in the WAL)."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def _event_rows(device_id: str, n: int) -> list[dict[str, Any]]:
    t0 = utcnow()
    return [
        {
            "id": new_uuid(),
            "device_id": device_id,
            "ts": t0 + timedelta(milliseconds=i),
            "kind": "granted" if i % 5 else "denied_face",
            "user_number": 1 + i % 1000,
            "user_id": None,
            "distance": 0.35,
            "reason": None if i % 5 else "mismatch",
            "snapshot_path": None if i % 5 else f"snapshots/2026/01/01/{i}.jpg",
            "detail": None,
            "synced_at": None,
        }
        for i in range(n)
    ]


def run_bench(
    server_url: str = DEFAULT_SERVER,
    users: int = 10_000,
    events: int = 10_000,
    deactivation_trials: int = 3,
    interval_s: float | None = None,
) -> dict[str, Any]:
    """Measure sync on a private database of `server_url`'s server; returns the figures."""
    from appliance.security import PinHasher

    base = make_url(server_url)
    name = f"doorward_bench_{secrets.token_hex(4)}"
    admin = Database.from_url(base.set(database="").render_as_string(hide_password=False))
    with admin.engine.begin() as c:
        c.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    relay = TcpRelay(base.host or "127.0.0.1", base.port or 3306).start()
    tmp = Path(tempfile.mkdtemp(prefix="doorward-bench-"))
    config = Config.convert(
        {
            "device": {"id": "bench-door", "data_dir": str(tmp)},
            "sync": {"interval_s": interval_s or Config().sync.interval_s},
        }
    )
    direct_url = base.set(database=name).render_as_string(hide_password=False)
    relayed_url = base.set(database=name, host="127.0.0.1", port=relay.port).render_as_string(
        hide_password=False
    )
    result: dict[str, Any] = {
        "users": users,
        "events": events,
        "batch_size": config.sync.batch_size,
    }
    central = open_central(config, direct_url, migrate=True)
    via_relay = open_central(config, relayed_url)
    replica = open_local_replica(config)
    try:
        hasher = PinHasher("bench-pepper")
        pin_hash = hasher.hash("2468")
        t, _ = _timed(lambda: _seed_users(central, users, pin_hash))
        result["central_insert_s"] = round(t, 2)

        # baseline: fetch the same rows with a plain SELECT over the same relay
        relay.reset_counts()

        def fetch_all() -> int:
            with via_relay.engine.connect() as c:
                a = c.execute(select(User.__table__)).all()
                b = c.execute(select(FaceTemplate.__table__)).all()
            return len(a) + len(b)

        via_relay.engine.dispose()
        t_base, rows = _timed(fetch_all)
        result["baseline_select"] = {
            "s": round(t_base, 3),
            "rows": rows,
            "bytes": relay.bytes_total,
        }

        _progress("full sync of users and templates into an empty replica")
        via_relay.engine.dispose()
        relay.reset_counts()
        worker = SyncWorker(config, via_relay, replica)
        t_sync, report = _timed(worker.run_once)
        if not report.ok:
            raise RuntimeError(f"sync failed: {report.error}")
        result["full_sync"] = {
            "s": round(t_sync, 3),
            "bytes": relay.bytes_total,
            "bytes_down": relay.bytes_down,
            "users": report.pulled["users"],
            "templates": report.pulled["face_templates"],
            "users_per_s": round(report.pulled["users"] / t_sync),
            "ratio_to_select": round(t_sync / t_base, 2),
            "replica_file_bytes": _file_bytes(config.replica_path),
        }
        relay.reset_counts()
        t_idle, _ = _timed(worker.run_once)
        result["idle_round"] = {"ms": round(t_idle * 1000, 1), "bytes": relay.bytes_total}

        _progress(f"pushing {events} queued events")
        rows_ev = _event_rows("bench-door", events)
        with replica.engine.begin() as c:
            c.execute(insert(AccessEvent.__table__), rows_ev)  # type: ignore[arg-type]
        relay.reset_counts()
        t_push, report = _timed(worker.run_once)
        if not report.ok or report.pushed != events:
            raise RuntimeError(f"push failed: {report.error} pushed={report.pushed}")
        push_bytes = relay.bytes_total
        # baseline: the same rows inserted into a copy of the table with one executemany
        with via_relay.engine.begin() as c:
            c.execute(text("CREATE TABLE access_events_copy LIKE access_events"))
        table: Any = AccessEvent.__table__
        copy = table.to_metadata(MetaData(), name="access_events_copy")
        relay.reset_counts()

        def plain_insert() -> None:
            with via_relay.engine.begin() as c:
                for i in range(0, events, config.sync.batch_size):
                    c.execute(insert(copy), rows_ev[i : i + config.sync.batch_size])

        t_plain, _ = _timed(plain_insert)
        result["event_push"] = {
            "s": round(t_push, 3),
            "events_per_s": round(events / t_push),
            "bytes": push_bytes,
            "baseline_insert_s": round(t_plain, 3),
            "baseline_bytes": relay.bytes_total,
            "ratio_to_insert": round(t_push / t_plain, 2),
        }

        _progress(f"deactivation to door, {deactivation_trials} trials")
        creds_door = ReplicaCredentials(replica, hasher, device_id="bench-door")
        worker.start()
        delays = []
        rng = np.random.default_rng(11)
        try:
            for trial in range(deactivation_trials):
                number = 1 + trial
                # the change lands at a random moment of the worker's interval
                time.sleep(float(rng.uniform(0, config.sync.interval_s)))
                with central.session() as s:
                    user = s.scalars(select(User).where(User.number == number)).one()
                    user.active = False
                t0 = time.perf_counter()
                while creds_door.check(number, "2468").verdict.value == "ok":
                    if time.perf_counter() - t0 > 60:
                        raise RuntimeError("deactivation did not reach the door in 60 s")
                delays.append(time.perf_counter() - t0)
            # on demand (the admin page triggers a round right after saving)
            number = deactivation_trials + 1
            with central.session() as s:
                s.scalars(select(User).where(User.number == number)).one().active = False
            t0 = time.perf_counter()
            worker.trigger()
            while creds_door.check(number, "2468").verdict.value == "ok":
                pass
            triggered = time.perf_counter() - t0
        finally:
            worker.stop()
        result["deactivation_to_door"] = {
            "interval_s": config.sync.interval_s,
            "mean_s": round(statistics.mean(delays), 2),
            "max_s": round(max(delays), 2),
            "triggered_s": round(triggered, 3),
            "ratio_max_to_interval": round(max(delays) / config.sync.interval_s, 2),
        }
    finally:
        for db in (via_relay, central, replica):
            db.close()
        relay.cut()
        with admin.engine.begin() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.close()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__)
    p.add_argument("--server", default=DEFAULT_SERVER, help="MySQL server URL (no database)")
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--trials", type=int, default=3, help="deactivation trials")
    args = p.parse_args(argv)
    out = run_bench(args.server, args.users, args.events, args.trials)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
