"""Owns the store's sub-commands: `doorward migrate` and `doorward sync` (--once, --status)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from appliance.config import Config


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "migrate", help="bring the central database and the local replica to the current schema"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--central-only", action="store_true", help="only the central database")
    which.add_argument("--replica-only", action="store_true", help="only the local replica")
    p.set_defaults(func=cmd_migrate)

    p = subparsers.add_parser(
        "sync", help="sync the local replica with the central database (every sync.interval_s)"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one round, JSON report, then exit")
    mode.add_argument("--status", action="store_true", help="print the replica's sync state")
    p.set_defaults(func=cmd_sync)


def _say(msg: str) -> None:
    print(f"doorward: {msg}", file=sys.stderr, flush=True)


def _short(exc: SQLAlchemyError) -> str:
    from appliance.store.sync import short_error

    return short_error(exc)


def cmd_migrate(args: argparse.Namespace) -> int:
    from appliance.store.central import (
        central_url_choice,
        open_central,
        open_local_replica,
        replica_path_choice,
    )
    from appliance.store.migrate import current

    config: Config = args.config
    url = central_url_choice(config, getattr(args, "db_url", None))
    out: dict[str, Any] = {}
    if url and not args.replica_only:
        db = open_central(config, url)
        try:
            _say(f"migrating central database {db.url}")
            t0 = time.perf_counter()
            try:
                db.migrate()
            except SQLAlchemyError as exc:
                raise ValueError(f"central database {db.url}: {_short(exc)}") from None
            out["central"] = {
                "url": db.url,
                "heads": sorted(current(db.engine)),
                "ms": round((time.perf_counter() - t0) * 1000),
            }
        finally:
            db.close()
    elif args.central_only:
        raise ValueError("no central database configured (--db, $DOORWARD_DATABASE_URL)")
    if not args.central_only:
        path = replica_path_choice(config, args.replica_path)
        _say(f"migrating local replica {path}")
        t0 = time.perf_counter()
        rep = open_local_replica(config, path)
        try:
            out["replica"] = {
                "path": str(path),
                "heads": sorted(current(rep.engine)),
                "ms": round((time.perf_counter() - t0) * 1000),
            }
        finally:
            rep.close()
    print(json.dumps(out))
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from appliance.store.central import (
        central_url_choice,
        open_central,
        open_local_replica,
        replica_path_choice,
    )
    from appliance.store.sync import SyncWorker, sync_status

    config: Config = args.config
    replica = open_local_replica(config, replica_path_choice(config, args.replica_path))
    try:
        if args.status:
            print(json.dumps(sync_status(replica)))
            return 0
        url = central_url_choice(config, getattr(args, "db_url", None))
        if not url:
            raise ValueError(
                "no central database configured (--db, $DOORWARD_DATABASE_URL or "
                "database.url): in the embedded default the replica is the database"
            )
        central = open_central(config, url)
        try:
            worker = SyncWorker(config, central, replica)
            if args.once:
                report = worker.run_once()
                print(json.dumps(report.as_dict()))
                return 0 if report.ok else 1
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            _say(f"syncing {replica.url} with {central.url} every {worker.interval_s:g} s")
            worker.start()
            try:
                stop.wait()
            finally:
                worker.stop()
            return 0
        finally:
            central.close()
    finally:
        replica.close()
