"""Start-up migrations: applied when needed, skipped (without loading alembic) when current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from appliance.store.db import Database
from appliance.store.migrate import current, is_current, script_heads


def test_script_heads_match_alembic(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    from appliance.store.migrate import alembic_config

    db = Database.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    expected = set(ScriptDirectory.from_config(alembic_config(db.engine)).get_heads())
    assert script_heads() == expected


def test_fresh_database_is_migrated_then_current(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'a.db'}")
    assert not is_current(db.engine)
    db.migrate()
    assert is_current(db.engine) and current(db.engine) == script_heads()


def test_a_current_database_starts_without_importing_alembic(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    Database.from_url(f"sqlite:///{path}").migrate()
    code = (
        "import sys; from appliance.store.db import Database; "
        f"Database.from_url('sqlite:///{path}').migrate(); "
        "print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
