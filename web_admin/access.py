"""Owns door access rules on the users pages: parsing the rule form, summaries, known doors."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from appliance.store.db import Database
from appliance.store.models import Device
from appliance.store.models_sync import ALL_WEEKDAYS, MINUTES_PER_DAY, UserAccess

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EVERY_DOOR = ""  # the form value of the "every door" choice (stored as NULL)
MAX_RULES_PER_USER = 20
NO_RULES_SUMMARY = "all doors, any time"
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::00)?$")


class AccessFormError(ValueError):
    """A rule form value is wrong; the message names the field."""


@dataclass(frozen=True)
class Rule:
    """One parsed access rule, ready to be stored as a UserAccess row."""

    device_id: str | None
    weekdays: int
    start_minute: int
    end_minute: int

    def key(self) -> tuple[str | None, int, int, int]:
        return (self.device_id, self.weekdays, self.start_minute, self.end_minute)


def known_doors(db: Database) -> list[tuple[str, str]]:
    """(device id, name) of every door registered in the devices table, by id."""
    with db.session() as s:
        return [(d.id, d.name) for d in s.scalars(select(Device).order_by(Device.id))]


def _minute(text: str, field: str, *, until: bool) -> int:
    text = (text or "").strip()
    if not text:
        return MINUTES_PER_DAY if until else 0
    m = _TIME.match(text)
    if m is None:
        raise AccessFormError(f"{field}: {text[:16]!r} is not a time of day (HH:MM)")
    hour, minute = int(m.group(1)), int(m.group(2))
    if minute > 59 or hour > 24 or (hour == 24 and (minute or not until)):
        top = "24:00" if until else "23:59"
        raise AccessFormError(f"{field}: {text!r} is not a time of day (00:00 to {top})")
    value = hour * 60 + minute
    # "until 00:00" (or 24:00) means until midnight at the end of the day
    return MINUTES_PER_DAY if until and value in (0, MINUTES_PER_DAY) else value


def parse_rule(form: Mapping[str, Any], doors: Iterable[str]) -> Rule:
    """The rule in a submitted form (fields door, days, from, until); AccessFormError names
    the field that is wrong. `form` is a werkzeug MultiDict (days is a multi-value field)."""
    door = (form.get("door") or EVERY_DOOR).strip()
    if door != EVERY_DOOR and door not in set(doors):
        raise AccessFormError(f"door: {door[:64]!r} is not a known door")
    getlist = getattr(form, "getlist", None)
    days = getlist("days") if getlist is not None else list(form.get("days") or [])
    mask = 0
    for d in days:
        if not (isinstance(d, str) and d.isdigit() and 0 <= int(d) <= 6):
            raise AccessFormError(f"weekdays: {str(d)[:8]!r} is not a day (0 = Monday to 6)")
        mask |= 1 << int(d)
    if mask == 0:
        raise AccessFormError("weekdays: tick at least one day")
    start = _minute(form.get("from", ""), "from", until=False)
    end = _minute(form.get("until", ""), "until", until=True)
    if start == end:
        raise AccessFormError("until: must differ from 'from' (leave both blank for the whole day)")
    return Rule(door or None, mask, start, end)


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def describe_days(mask: int) -> str:
    """Mon–Fri, Sat, Sun, every day, Mon, Wed–Fri ... (bit 0 = Monday)."""
    if mask & ALL_WEEKDAYS == ALL_WEEKDAYS:
        return "every day"
    runs: list[tuple[int, int]] = []
    for day in range(7):
        if mask >> day & 1:
            if runs and runs[-1][1] == day - 1:
                runs[-1] = (runs[-1][0], day)
            else:
                runs.append((day, day))
    parts: list[str] = []
    for a, b in runs:
        if b - a >= 2:
            parts.append(f"{DAY_NAMES[a]}–{DAY_NAMES[b]}")
        else:
            parts.extend(DAY_NAMES[d] for d in range(a, b + 1))
    return ", ".join(parts)


def describe_times(start: int, end: int) -> str:
    if start == 0 and end == MINUTES_PER_DAY:
        return "any time"
    text = f"{hhmm(start)}–{hhmm(end)}"
    return text + " (overnight)" if start > end else text


def describe(rule: UserAccess | Rule) -> str:
    """One rule in words, e.g. "front-door Mon–Fri 07:00–19:00"."""
    door = rule.device_id or "every door"
    days = describe_days(rule.weekdays)
    times = describe_times(rule.start_minute, rule.end_minute)
    if days == "every day" and times == "any time":
        return f"{door}, any time"
    if days == "every day":
        return f"{door} {times}"
    return f"{door} {days}" + ("" if times == "any time" else f" {times}")


def summarize(rules: Sequence[UserAccess | Rule]) -> str:
    """The user's access in one line: "all doors, any time" without rules."""
    if not rules:
        return NO_RULES_SUMMARY
    return "; ".join(describe(r) for r in sorted(rules, key=_order))


def _order(rule: UserAccess | Rule) -> tuple[str, int, int]:
    return (rule.device_id or "", rule.start_minute, -rule.weekdays)


def rules_of(db: Database, user_ids: Sequence[int]) -> dict[int, list[UserAccess]]:
    """Access rules of the given users (one query), by user id."""
    out: dict[int, list[UserAccess]] = {}
    if not user_ids:
        return out
    with db.session() as s:
        for r in s.scalars(
            select(UserAccess).where(UserAccess.user_id.in_(list(user_ids))).order_by(UserAccess.id)
        ):
            out.setdefault(r.user_id, []).append(r)
    return out
