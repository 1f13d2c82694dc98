"""Owns the door's lockdown switch as stored state, so that it survives a restart and can be
set by another process (the admin page, `doorward lockdown on`) on the door's own database."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from .db import Database
from .models import utcnow
from .models_sync import SyncState

KEY = "lockdown"


def read_lockdown(db: Database) -> dict[str, Any]:
    """{"on": bool, "by": str, "source": str, "at": ISO time or None}."""
    with db.session() as s:
        row = s.get(SyncState, KEY)
        raw = row.value if row is not None else ""
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {"on": True, "by": "?", "source": "unreadable state: fail secure"}
    return {
        "on": bool(data.get("on", False)),
        "by": str(data.get("by", "")),
        "source": str(data.get("source", "")),
        "at": data.get("at"),
    }


def write_lockdown(
    db: Database, on: bool, *, by: str, source: str, at: datetime | None = None
) -> None:
    value = json.dumps(
        {"on": bool(on), "by": by, "source": source, "at": (at or utcnow()).isoformat()}
    )
    with db.session() as s:
        s.merge(SyncState(key=KEY, value=value))
