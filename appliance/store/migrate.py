"""Owns running Alembic migrations programmatically (start-up and `doorward migrate`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).with_name("migrations")
_REVISION = re.compile(r"^revision\s*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN = re.compile(r"^down_revision\s*=\s*(.+)$", re.M)


def alembic_config(engine: Engine) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def script_heads() -> set[str]:
    """The head revisions of the migration scripts, read from the files (no alembic import)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        rev = _REVISION.search(source)
        if rev is None:
            continue
        revisions.add(rev.group(1))
        down = _DOWN.search(source)
        if down:
            parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    return revisions - parents


def is_current(engine: Engine) -> bool:
    """True when the database is already at every head (a cheap query, no alembic import)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return False
        applied = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
    return applied == script_heads()


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema to `revision` (all branch heads by default)."""
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def current(engine: Engine) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())
