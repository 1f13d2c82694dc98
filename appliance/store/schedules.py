"""Owns door schedules in the database: weekly windows, holidays, .ics import, and the cached
view the door evaluates on its ticks (core.schedule does the evaluation)."""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from appliance.core.schedule import Active, Window, active_window, validate_window

from .db import Database
from .models_policies import Holiday, ScheduleWindow
from .models_sync import SyncSeq

log = logging.getLogger(__name__)

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ICS_MAX_BYTES = 1_000_000
ICS_MAX_DAYS = 3660  # ten years of holidays from one file is plenty


class ScheduleError(ValueError):
    """A schedule or holiday value that cannot be stored; the message names it."""


def parse_weekdays(text: str) -> int:
    """'mon-fri', 'mon,wed,sat', 'all' -> a weekday mask (bit 0 = Monday)."""
    text = text.strip().lower()
    if text in ("all", "every", "*"):
        return 0b1111111
    mask = 0
    for part in filter(None, (p.strip() for p in text.split(","))):
        a, _, b = part.partition("-")
        try:
            i = WEEKDAY_NAMES.index(a[:3])
            j = WEEKDAY_NAMES.index(b[:3]) if b else i
        except ValueError:
            raise ScheduleError(
                f"--days: {part!r} is not a day (mon..sun, ranges like mon-fri)"
            ) from None
        k = i
        while True:
            mask |= 1 << k
            if k == j:
                break
            k = (k + 1) % 7
    if not mask:
        raise ScheduleError("--days: give at least one day, e.g. mon-fri")
    return mask


def parse_minute(text: str, what: str) -> int:
    """'08:30' -> 510; '24:00' allowed as an end."""
    try:
        h, m = text.strip().split(":")
        value = int(h) * 60 + int(m)
        if not (0 <= int(m) < 60 and 0 <= value <= 1440):
            raise ValueError
    except ValueError:
        raise ScheduleError(f"{what}: {text!r} is not a time HH:MM") from None
    return value


def add_window(
    db: Database,
    *,
    device_id: str | None,
    weekdays: int,
    start_minute: int,
    end_minute: int,
    first_person_in: bool = False,
    label: str = "",
) -> ScheduleWindow:
    try:
        validate_window(weekdays, start_minute, end_minute)
    except ValueError as exc:
        raise ScheduleError(str(exc)) from None
    with db.session() as s:
        row = ScheduleWindow(
            device_id=device_id or None,
            weekdays=weekdays,
            start_minute=start_minute,
            end_minute=end_minute,
            first_person_in=first_person_in,
            label=label[:64],
        )
        s.add(row)
        s.flush()
        s.expunge(row)
    return row


def delete_window(db: Database, window_id: int) -> None:
    with db.session() as s:
        row = s.get(ScheduleWindow, window_id)
        if row is None:
            raise ScheduleError(f"ID: no schedule window {window_id}")
        s.delete(row)


def add_holiday(db: Database, day: date, name: str = "", device_id: str | None = None) -> bool:
    """Store a holiday; False when that day is already one (for that door)."""
    with db.session() as s:
        exists = s.scalar(
            select(func.count())
            .select_from(Holiday)
            .where(Holiday.day == day, _same_door(device_id))
        )
        if exists:
            return False
        s.add(Holiday(day=day, name=name[:128], device_id=device_id or None))
    return True


def _same_door(device_id: str | None) -> Any:
    if device_id:
        return Holiday.device_id == device_id
    return Holiday.device_id.is_(None)


def delete_holiday(db: Database, holiday_id: int) -> None:
    with db.session() as s:
        row = s.get(Holiday, holiday_id)
        if row is None:
            raise ScheduleError(f"ID: no holiday {holiday_id}")
        s.delete(row)


def ics_days(data: bytes) -> list[tuple[date, str]]:
    """Every day covered by the VEVENTs of an iCalendar file, with the event's summary.

    All-day events cover [DTSTART, DTEND) (one day without DTEND); timed events cover the
    dates they touch. Recurrences (RRULE) are not expanded: the file is refused, naming the
    event, so that no holiday is silently missing.
    """
    import icalendar

    if len(data) > ICS_MAX_BYTES:
        raise ScheduleError(f".ics: larger than {ICS_MAX_BYTES // 1000} kB")
    try:
        cal = icalendar.Calendar.from_ical(data)
    except Exception as exc:  # the parser raises ValueError and friends on bad input
        raise ScheduleError(f".ics: not an iCalendar file ({exc})") from None
    out: list[tuple[date, str]] = []
    for ev in cal.walk("VEVENT"):
        summary = str(ev.get("SUMMARY", "") or "")
        if ev.get("RRULE") is not None:
            raise ScheduleError(
                f".ics: event {summary!r} repeats (RRULE); export the dates one by one"
            )
        start = ev.get("DTSTART")
        if start is None:
            raise ScheduleError(f".ics: event {summary!r} has no DTSTART")
        first = start.dt
        end = ev.get("DTEND")
        last_excl: date
        if isinstance(first, datetime):
            last_dt = end.dt if end is not None else first
            first = first.date()
            last_excl = (last_dt.date() if isinstance(last_dt, datetime) else last_dt) + timedelta(
                days=1
            )
        else:
            last_excl = end.dt if end is not None else first + timedelta(days=1)
            if isinstance(last_excl, datetime):
                last_excl = last_excl.date()
        if (last_excl - first).days > ICS_MAX_DAYS:
            raise ScheduleError(f".ics: event {summary!r} spans more than {ICS_MAX_DAYS} days")
        d = first
        while d < last_excl:
            out.append((d, summary))
            d += timedelta(days=1)
    return out


def import_ics(db: Database, path_or_bytes: Path | bytes, device_id: str | None = None) -> int:
    """Add every day of an .ics file as a holiday; the number of new holidays."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    added = 0
    for day, name in ics_days(data):
        added += add_holiday(db, day, name, device_id)
    return added


def list_schedule(db: Database) -> dict[str, list[dict[str, Any]]]:
    with db.session() as s:
        windows = [
            {
                "id": w.id,
                "door": w.device_id,
                "label": w.label,
                "weekdays": w.weekdays,
                "days": ",".join(n for i, n in enumerate(WEEKDAY_NAMES) if w.weekdays >> i & 1),
                "start": f"{w.start_minute // 60:02d}:{w.start_minute % 60:02d}",
                "end": f"{w.end_minute // 60:02d}:{w.end_minute % 60:02d}",
                "first_person_in": w.first_person_in,
            }
            for w in s.scalars(select(ScheduleWindow).order_by(ScheduleWindow.id))
        ]
        holidays = [
            {"id": h.id, "day": h.day.isoformat(), "name": h.name, "door": h.device_id}
            for h in s.scalars(select(Holiday).order_by(Holiday.day))
        ]
    return {"windows": windows, "holidays": holidays}


class ScheduleCache:
    """The door's windows and holidays from its replica, reloaded when the change sequence
    moves (an ORM write or a sync batch), evaluated at most once per `every_s` of wall time."""

    def __init__(self, db: Database, device_id: str, tz: tzinfo | None = None) -> None:
        self._db = db
        self._device_id = device_id
        self._tz = tz
        self._stamp: int | None = None
        self._windows: list[Window] = []
        self._holidays: set[date] = set()
        self._mutex = threading.Lock()

    def refresh(self) -> None:
        with self._db.session() as s:
            stamp = int(s.scalar(select(SyncSeq.value).where(SyncSeq.id == 1)) or 0)
            if stamp == self._stamp:
                return
            windows = [
                Window(w.id, w.weekdays, w.start_minute, w.end_minute, w.first_person_in,
                       w.device_id)
                for w in s.scalars(select(ScheduleWindow))
            ]  # fmt: skip
            holidays = {
                h.day
                for h in s.scalars(select(Holiday))
                if h.device_id is None or h.device_id == self._device_id
            }
        with self._mutex:
            self._windows, self._holidays, self._stamp = windows, holidays, stamp

    def active(self, now: datetime) -> Active | None:
        self.refresh()
        with self._mutex:
            return active_window(
                self._windows, self._holidays, now.astimezone(self._tz), self._device_id
            )
