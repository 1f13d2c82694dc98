"""What every `doorward` sub-command shares: the user-error type, opening the databases and
argument types. Imports nothing heavy: the admin page's process starts from here too."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from appliance.config import Config, ConfigError


class CliError(Exception):
    """A user error: printed as `doorward: error: ...` with exit status 2."""


def open_door_db(args: argparse.Namespace) -> Any:
    """The device-local replica the door decides from (--replica / $DOORWARD_REPLICA_PATH).

    In the embedded default (no central database) this one SQLite file is the whole database.
    """
    from appliance.store.central import open_local_replica

    config: Config = args.config
    check_data_dir(config.data_dir)
    db = open_local_replica(config, getattr(args, "replica_path", None), central=central_url(args))
    if db.rebuilt_from is not None:
        salvaged = db.salvaged or {}
        copied = ", ".join(f"{n} {t}" for t, n in (salvaged.get("copied") or {}).items() if n)
        lost = "; unreadable: " + ", ".join(salvaged["errors"]) if salvaged.get("errors") else ""
        print(
            f"doorward: replica was damaged and moved to {db.rebuilt_from}; rebuilding it "
            f"from the central database (copied from it: {copied or 'nothing'}{lost})",
            file=sys.stderr,
            flush=True,
        )
    return db


def central_url(args: argparse.Namespace) -> str | None:
    """--db, else $DOORWARD_DATABASE_URL, else database.url; None = embedded default."""
    from appliance.store.central import central_url_choice

    return central_url_choice(args.config, getattr(args, "db_url", None))


def open_central_db(args: argparse.Namespace) -> Any:
    """Where users are enrolled and administered: the central database, else the replica."""
    from appliance.store.central import open_central

    url = central_url(args)
    if url is None:
        return open_door_db(args)
    return open_central(args.config, url, migrate=True)


@contextmanager
def command_db(
    args: argparse.Namespace, *errors: type[Exception], door: bool = False, prefix: str = ""
) -> Iterator[Any]:
    """The central database (`door`: the door's own) for one command, closed after it; the
    domain `errors` raised inside become a CliError with their message (after `prefix`)."""
    db = open_door_db(args) if door else open_central_db(args)
    try:
        yield db
    except errors as exc:
        raise CliError(f"{prefix}{exc}") from None
    finally:
        db.close()


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be 1 or more")
    return value


def existing_file(text: str) -> Path:
    p = Path(text)
    if not p.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    return p


def check_data_dir(path: Path) -> None:
    """The data directory exists and is private (0700): it holds the database, snapshots,
    enrollment photos and the mailbox."""
    from appliance.security import private_dir

    try:
        private_dir(path)
    except OSError as exc:
        raise ConfigError(f"device.data_dir: cannot create {path}: {exc.strerror}") from None
