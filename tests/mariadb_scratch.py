"""The real MariaDB of the test machine: a private database per test, dropped afterwards.

Imported as tests.mariadb_scratch (tests/ is a package; the repository root is on sys.path).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from tests.ci_gate import require

MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306


def admin_connection():
    """root on the test server (no password), autocommit; fails in CI, skips elsewhere."""
    import pymysql

    try:
        return pymysql.connect(
            host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="", connect_timeout=3,
            autocommit=True,
        )  # fmt: skip
    except Exception as exc:
        require(False, f"MariaDB not reachable at {MYSQL_HOST}:{MYSQL_PORT}: {exc}")
        raise


@contextmanager
def scratch_database(prefix: str = "doorward_test") -> Iterator[str]:
    """A database of its own (parallel runs never collide); its name."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    conn = admin_connection()
    with conn.cursor() as cur:
        statement = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"  # our name, not input
        cur.execute(statement)
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            statement = f"DROP DATABASE IF EXISTS `{name}`"
            cur.execute(statement)
        conn.close()


def url_of(name: str) -> str:
    return f"mysql+pymysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
