"""Owns what every admin view shares: collaborators, the signed-in account, audit, form helpers."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import abort, current_app, g, request

from appliance.config import Config
from appliance.store.db import Database
from appliance.store.models_admin import AuditEntry

log = logging.getLogger("web_admin")

PAGE_SIZE = 25


def ext() -> dict[str, Any]:
    return current_app.extensions["doorward"]


def get_config() -> Config:
    return ext()["config"]


def get_db() -> Database:
    return ext()["db"]


def get_local_db() -> Database:
    """The device-local database: alert outbox and sync state. It is the same database as
    get_db() in the embedded default and whenever the page runs without a door beside it."""
    return ext().get("local_db") or ext()["db"]


def get_sync() -> Any:
    """The running sync worker (None in the embedded default or when served alone)."""
    return ext().get("sync")


def get_door() -> Any:
    return ext()["door"]


def face_engine() -> Any:
    """The door's face engine when the door runs here, else one built on first use."""
    door = get_door()
    if door is not None:
        return door.face
    e = ext()
    if e.get("face") is None:
        from appliance.vision import FaceEngine

        e["face"] = FaceEngine(get_config().vision)
    return e["face"]


def pin_hasher() -> Any:
    e = ext()
    if e.get("hasher") is None:
        from appliance.security import pin_hasher as make

        e["hasher"] = make(get_config(), get_db())
    return e["hasher"]


def actor() -> str:
    account = g.get("account")
    return account.username if account is not None else "-"


def audit(action: str, target: str | None = None, **detail: Any) -> None:
    """Record an admin action (who, what, to whom, when) and log it greppably."""
    with get_db().session() as s:
        s.add(
            AuditEntry(
                actor=actor(),
                action=action,
                target=target,
                ip=(request.remote_addr or "")[:64] or None,
                detail=detail or None,
            )
        )
    log.info("event=admin_%s actor=%s target=%s", action, actor(), target or "-")
    sync = get_sync()
    if sync is not None and action.startswith("user"):
        sync.trigger()  # the door sees the change in a fraction of a second, not an interval


def file_in(folder: Path, rel: str, suffix: str | None = None) -> Path:
    """The absolute path of `rel` inside `folder`, or a 404: the file must exist and lie inside
    that very folder once both are resolved (no `..`, encoded or not, no symlink out of it).
    Absolute, because send_file resolves a relative path against the package folder."""
    base = Path(folder).resolve()
    try:
        path = (base / rel).resolve()
    except (OSError, ValueError, RuntimeError):
        abort(404)
    if base not in path.parents or not path.is_file():
        abort(404)
    if suffix is not None and path.suffix.lower() != suffix:
        abort(404)
    return path


def require_admin() -> None:
    account = g.get("account")
    if account is None or account.role != "admin":
        abort(403)


def page_arg() -> int:
    try:
        return max(1, min(int(request.args.get("page", "1")), 100_000))
    except ValueError:
        return 1


def parse_local_dt(text: str, field: str) -> datetime | None:
    """A form's datetime-local (or date) value, read as UTC; ValueError names the field."""
    text = (text or "").strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"{field}: {text!r} is not a date and time (YYYY-MM-DD HH:MM)")


def fmt_dt(value: datetime | None, with_seconds: bool = False) -> str:
    if not isinstance(value, datetime):
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def input_dt(value: datetime | None) -> str:
    if not isinstance(value, datetime):
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
