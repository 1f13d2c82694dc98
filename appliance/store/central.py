"""Owns connecting to the central database: URL choice, password from its secret, TLS options."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from appliance.config import ENV_DATABASE_URL, ENV_REPLICA_PATH, Config, ConfigError

from .db import Database, StoreError, make_engine, sqlite_url

log = logging.getLogger(__name__)


def central_url_choice(config: Config, cli_url: str | None = None) -> str | None:
    """The central database URL: --db, else $DOORWARD_DATABASE_URL, else database.url.

    None means the embedded default: one SQLite file is both central database and replica.
    """
    return cli_url or os.environ.get(ENV_DATABASE_URL) or config.database.url or None


def replica_path_choice(config: Config, cli_path: str | os.PathLike[str] | None = None) -> Path:
    """The local replica file: --replica, else $DOORWARD_REPLICA_PATH, else config."""
    chosen = cli_path or os.environ.get(ENV_REPLICA_PATH) or None
    return Path(chosen) if chosen else config.replica_path


def _is_mysql(url: URL) -> bool:
    return url.get_backend_name() in ("mysql", "mariadb")


def central_connect_args(config: Config) -> dict[str, Any]:
    """PyMySQL connect arguments from database.*: timeouts and TLS (ssl_* options)."""
    d = config.database
    args: dict[str, Any] = {
        "connect_timeout": max(1, round(d.connect_timeout_s)),
        "read_timeout": max(1, round(d.io_timeout_s)),
        "write_timeout": max(1, round(d.io_timeout_s)),
    }
    for key, path in (("ssl_ca", d.ssl_ca), ("ssl_cert", d.ssl_cert), ("ssl_key", d.ssl_key)):
        if path is not None:
            if not Path(path).is_file():
                raise ConfigError(f"database.{key}: {path} is not a readable file")
            args[key] = str(path)
    if d.tls or d.ssl_ca is not None:
        # TLS required: the server's certificate is checked against ssl_ca (else the system
        # store), and its name against the URL's host unless ssl_verify_identity = false
        args["ssl_verify_cert"] = True
        args["ssl_verify_identity"] = d.ssl_verify_identity
    if (d.ssl_cert is None) != (d.ssl_key is None):
        raise ConfigError("database.ssl_cert and database.ssl_key must be given together")
    return args


def central_url(config: Config, url: str) -> URL:
    """`url` parsed, with the password from database.password when that is configured."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise StoreError(f"invalid central database URL: {exc}") from None
    password = config.database.password.resolve("database.password")
    if password is not None:
        parsed = parsed.set(password=password)
    return parsed


def open_central(config: Config, url: str, *, migrate: bool = False) -> Database:
    """The central database at `url` (MySQL/MariaDB via PyMySQL, or SQLite), not yet connected.

    Nothing is contacted until first use, so an unreachable server does not stop start-up.
    """
    parsed = central_url(config, url)
    args = central_connect_args(config) if _is_mysql(parsed) else {}
    engine = make_engine(parsed.render_as_string(hide_password=False), connect_args=args)
    db = Database(engine)
    if migrate:
        db.migrate()
    return db


class DamagedReplica(StoreError):
    """The replica file exists but is empty, truncated or corrupt; the message names the file
    and the way out."""


def replica_problem(path: Path) -> str | None:
    """What is wrong with the SQLite file at `path` (None: sound, or not there yet).

    An empty file where the door's state is expected is an error, never a fresh database;
    anything else gets `PRAGMA quick_check` (every page of every table and index is read).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return "it is empty (0 bytes)"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            result = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"it is not a readable SQLite database ({exc})"
    if result != ["ok"]:
        lines = [" ".join(str(r).split()) for r in result[:3]]  # one line: SQLite's can hold \n
        return f"quick_check failed: {'; '.join(lines)}"
    return None


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            src.rename(Path(f"{aside}{suffix}"))
    return aside


# What only the door has: rows a rebuild from the central database cannot bring back, with
# the test that picks them (column, value the row must have; None: IS NULL). Read in rowid
# order, so a damaged page loses the rows on it and not the rest of the table.
SALVAGE: tuple[tuple[str, str, str | None], ...] = (
    ("access_events", "synced_at", None),  # not yet pushed
    ("outbox", "state", "pending"),  # alerts not yet delivered everywhere
    ("alert_deliveries", "alert_id", "<pending outbox>"),  # every channel of those alerts
    ("guest_uses", "synced_at", None),  # guest-code uses not yet pushed
)
_SCAN = {  # the damaged file's tables, whole (filtered in Python: an index may be damaged too)
    "access_events": "SELECT * FROM access_events",
    "outbox": "SELECT * FROM outbox",
    "alert_deliveries": "SELECT * FROM alert_deliveries",
    "guest_uses": "SELECT * FROM guest_uses",
}


def _read_rows(src: sqlite3.Connection, table: str) -> tuple[list[str], list[tuple], str | None]:
    """Column names and the rows SQLite can still read, in rowid order; and the error that
    stopped the scan early (None: the whole table was read)."""
    rows: list[tuple] = []
    try:
        cur = src.execute(_SCAN[table])
        cols = [d[0] for d in cur.description]
        while True:
            batch = cur.fetchmany(500)
            if not batch:
                return cols, rows, None
            rows.extend(batch)
    except sqlite3.DatabaseError as exc:
        return (cols if rows else []), rows, str(exc)


def salvage_unsynced(aside: Path, db: Database) -> dict[str, Any]:
    """Copy what only the door had (SALVAGE) from the damaged replica moved to `aside` into
    the new replica `db`, as far as SQLite can still read it: unsynced events are pushed by
    the next sync round, pending alerts are delivered. Returns rows copied per table, and
    the errors met (rows on an unreadable page are lost; the file stays for a look)."""
    from sqlalchemy import bindparam, column, insert, inspect, text
    from sqlalchemy import table as table_clause

    report: dict[str, Any] = {"copied": {}, "errors": {}}
    try:
        src = sqlite3.connect(f"file:{aside}?mode=ro", uri=True, timeout=10)
        src.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        report["errors"]["file"] = str(exc)
        return report
    try:
        known = {t: {c["name"] for c in inspect(db.engine).get_columns(t)} for t, *_ in SALVAGE}
        pending_alerts: set[Any] = set()
        with db.engine.begin() as conn:
            for table, test_col, want in SALVAGE:
                cols, found, error = _read_rows(src, table)
                if error is not None:
                    report["errors"][table] = error
                if not cols:
                    continue
                if test_col not in cols:
                    report["errors"][table] = f"no column {test_col}"
                    continue
                at = cols.index(test_col)
                if table == "alert_deliveries":  # delivered ones too: not sent twice
                    keep = [r for r in found if r[at] in pending_alerts]
                else:
                    keep = [r for r in found if r[at] == want]
                if table == "outbox":
                    pending_alerts = {r[cols.index("id")] for r in keep}
                use = [i for i, c in enumerate(cols) if c in known[table]]
                if not keep or not use:
                    report["copied"][table] = 0
                    continue
                if table == "outbox" and "event_id" in cols:
                    # an alert whose event was on a lost page keeps no link to it (the
                    # foreign key's ON DELETE SET NULL)
                    ev = cols.index("event_id")
                    have = {
                        r[0]
                        for r in conn.execute(
                            text("SELECT id FROM access_events WHERE id IN :ids").bindparams(
                                bindparam("ids", expanding=True)
                            ),
                            {"ids": [r[ev] for r in keep if r[ev] is not None] or [""]},
                        )
                    }
                    keep = [r[:ev] + (r[ev] if r[ev] in have else None,) + r[ev + 1 :]
                            for r in keep]  # fmt: skip
                # the stored values as they are (no type conversion: same storage format)
                target = table_clause(table, *(column(cols[i]) for i in use))
                stmt = insert(target).prefix_with("OR IGNORE")
                try:
                    with conn.begin_nested():
                        result = conn.execute(stmt, [{cols[i]: r[i] for i in use} for r in keep])
                    report["copied"][table] = result.rowcount
                except Exception as exc:  # a row the new schema refuses: this table only
                    report["errors"][table] = f"not copied: {exc}"[:300]
    finally:
        src.close()
    return report


def open_local_replica(
    config: Config,
    path: str | os.PathLike[str] | None = None,
    *,
    central: str | None = None,
) -> Database:
    """The device-local SQLite replica the door decides from, migrated to all heads.

    A damaged replica (empty, truncated, corrupt page, bad header) raises DamagedReplica with
    one line naming the file and the way out, unless `central` (a central database URL other
    than the replica itself) is given: then the damaged file is moved aside, an empty replica
    is created and the first sync round rebuilds it from the central database. The returned
    Database then has `rebuilt_from` set to the moved file, and `salvaged` to what
    `salvage_unsynced` could copy from it (unsynced events, pending alerts, guest uses).
    """
    target = Path(replica_path_choice(config, path))
    problem = replica_problem(target)
    aside = None
    if problem is not None:
        if not central or make_url(central) == make_url(sqlite_url(target)):
            raise DamagedReplica(
                f"replica {target} is damaged: {problem}. The door will not start on it. "
                f"Restore {target} from a backup (stop doorward first), or configure "
                f"database.url so the door can rebuild it from the central database"
            )
        aside = _move_aside(target)
        log.error(
            "event=replica_rebuild path=%s problem=%r moved_to=%s: the replica is rebuilt "
            "from the central database; what only the door had is copied from the moved file",
            target, problem, aside,
        )  # fmt: skip
    db = Database.from_url(sqlite_url(target))
    db.migrate()
    db.rebuilt_from = aside
    if aside is not None:
        try:
            db.salvaged = salvage_unsynced(aside, db)
        except Exception as exc:  # the rebuild goes on: the moved file is still there
            db.salvaged = {"copied": {}, "errors": {"salvage": f"{type(exc).__name__}: {exc}"}}
        log.error("event=replica_salvaged moved_to=%s copied=%s errors=%s", aside,
                  db.salvaged["copied"], db.salvaged["errors"])  # fmt: skip
    return db


def is_same_database(a: Database, b: Database) -> bool:
    return a.engine.url == b.engine.url
