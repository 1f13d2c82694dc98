"""Owns database engines and sessions: SQLite (WAL) for the device, MySQL via PyMySQL centrally."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


class StoreError(RuntimeError):
    """The database is unreachable or unusable; the message says which URL and why."""


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed event/outbox row survives a power cut (SD cards lie less with FULL).
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str, *, connect_args: dict[str, Any] | None = None, **kw: Any) -> Engine:
    """An engine for `url`. SQLite files get WAL + synchronous=FULL; parent dirs are created."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        # not echoed: an unparseable URL may still hold a password
        raise StoreError(f"invalid database URL (not shown): {exc}") from None
    args = dict(connect_args or {})
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            from appliance.security import private_dir

            private_dir(Path(db).parent)
        args.setdefault("timeout", 10)
        args.setdefault("check_same_thread", False)
        engine = create_engine(parsed, connect_args=args, **kw)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() in ("mysql", "mariadb"):
        kw.setdefault("pool_pre_ping", True)
        kw.setdefault("pool_recycle", 3600)
        args.setdefault("connect_timeout", 5)
        args.setdefault("charset", "utf8mb4")
    return create_engine(parsed, connect_args=args, **kw)


class Database:
    """An engine and its session factory."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        self.rebuilt_from: Path | None = None  # a damaged replica moved aside (central.py)
        self.salvaged: dict[str, Any] | None = None  # what was copied from it (central.py)

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> Database:
        return cls(make_engine(url, **kw))

    @property
    def url(self) -> str:
        return safe_url(self.engine.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on error."""
        with self.sessions() as s, s.begin():
            yield s

    def migrate(self) -> None:
        """Upgrade to every head; a database already there costs one query (alembic, and
        its memory, is only loaded when there is something to do)."""
        from .migrate import is_current, upgrade

        if not is_current(self.engine):
            upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()


SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "pass", "secret", "token", "key", "auth")


def safe_url(url: Any) -> str:
    """A database URL fit to show or log: the password masked, and so is every query parameter
    that names a secret (`?password=`, `?ssl_key=`, `?token=` ...)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        u = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return "(a database URL that cannot be parsed; not shown, it may hold a password)"
    query = {
        k: ("***" if any(w in k.lower() for w in SECRET_QUERY_KEYS) else v)
        for k, v in u.query.items()
    }
    return u.set(query=query).render_as_string(hide_password=True)
