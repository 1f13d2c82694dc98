"""A stand-alone dispatcher process (`python -m tests.support.alert_worker`) for the kill -9
durability test: the door's dispatcher alone, killed and restarted by the test."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from appliance.alerts.dispatcher import build_dispatcher
from appliance.config import ConfigError, load_config
from appliance.store.db import Database, sqlite_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.alert_worker")
    parser.add_argument("--config", help="TOML file (default: $DOORWARD_CONFIG or embedded)")
    parser.add_argument("--db", help="database URL or SQLite file (default: the replica)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"worker: error: {exc}", file=sys.stderr)
        return 2
    url = args.db or sqlite_url(config.replica_path)
    if "://" not in url:
        url = sqlite_url(url)  # type: ignore[arg-type]
    db = Database.from_url(url)
    db.migrate()
    dispatcher = build_dispatcher(config, db)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    dispatcher.start()
    print("worker: ready", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        dispatcher.stop()
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
