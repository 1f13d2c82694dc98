"""Owns how the admin page words things: names next to numbers, kinds, states, durations, the
door's one name (Jinja filters and globals, one database read per request for the names)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask, g
from sqlalchemy import select

from appliance.core.kinds import EventKind
from appliance.core.wording import duration, outcome_line, person, reason_words, state_words
from appliance.store.models import Device, User

from .common import get_config, get_db

# the events that are a decision at the door (the panel shows the latest one after Send)
DECISIONS = frozenset({"granted", "code_wrong", "denied_face", "denied_no_face",
                       "denied_liveness", "lockout"})  # fmt: skip


def user_names() -> dict[int, str]:
    """number -> name, read once per request."""
    names = g.get("_user_names")
    if names is None:
        with get_db().session() as s:
            names = {n: name for n, name in s.execute(select(User.number, User.name))}
        g._user_names = names
    return names


def door_names() -> dict[str, str]:
    """device id -> door name (this door's name from its config wins)."""
    names = g.get("_door_names")
    if names is None:
        with get_db().session() as s:
            names = {d: n for d, n in s.execute(select(Device.id, Device.name)) if n}
        config = get_config()
        names[config.device.id] = config.device.name
        g._door_names = names
    return names


def who(number: int | None) -> str:
    """'Kit Harington (1)'; 'user 7 (not enrolled)' for a number nobody has."""
    if number is None:
        return ""
    name = user_names().get(number)
    return person(number, name) if name else f"user {number} (not enrolled)"


def door_name(device_id: str | None) -> str:
    if not device_id:
        return ""
    return door_names().get(device_id, device_id)


def kind_words(kind: str) -> str:
    try:
        return EventKind(kind).heading
    except ValueError:
        return kind.replace("_", " ").capitalize()


def event_line(e: Any) -> str:
    """The plain line the terminal prints, for an AccessEvent row or a RecordedEvent."""
    number = getattr(e, "user_number", None)
    alert = getattr(e, "alert_id", None)
    line = outcome_line(
        e.kind,
        number=number,
        name=user_names().get(number) if number is not None else None,
        reason=getattr(e, "reason", None),
        alerted=alert is not None,
        detail=getattr(e, "detail", None) or {},
    )
    return line or kind_words(e.kind)


def ago(value: datetime | str | None, now: datetime | None = None) -> str:
    """'12 s ago', '3 min ago'; 'never' for None."""
    if value is None:
        return "never"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    if seconds < 1:
        return "just now"
    return f"{duration(seconds)} ago"


def install(app: Flask) -> None:
    app.jinja_env.filters.update(
        who=who,
        door_name=door_name,
        kind_words=kind_words,
        state_words=state_words,
        duration=duration,
        reason_words=reason_words,
        ago=ago,
        event_line=event_line,
    )
