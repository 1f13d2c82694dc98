"""Owns the door's unlock schedule as pure data: weekly windows, holidays, the active window.

A window is a weekday mask (bit 0 = Monday) and [start_minute, end_minute) of the door's local
day; start > end is an overnight window whose morning part belongs to the day it started. A
holiday is a local date on which no window that *starts* that day opens (the weekly schedule
is overridden: the door stays locked). The host evaluates `active_window` on its ticks and
sends the state machine `ScheduleChanged` when the answer changes; the held unlock itself is a
state of the machine (core/machine.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

MINUTES_PER_DAY = 1440


@dataclass(frozen=True)
class Window:
    id: int
    weekdays: int
    start_minute: int
    end_minute: int
    first_person_in: bool = False
    device_id: str | None = None  # None: every door

    def started_on(self, local: datetime) -> date | None:
        """The local date the occurrence of this window containing `local` started, if any."""
        minute = local.hour * 60 + local.minute
        today = local.date()
        wd = local.weekday()
        if self.start_minute < self.end_minute:
            if self.weekdays >> wd & 1 and self.start_minute <= minute < self.end_minute:
                return today
            return None
        if minute >= self.start_minute and self.weekdays >> wd & 1:
            return today
        if minute < self.end_minute and self.weekdays >> ((wd - 1) % 7) & 1:
            return today - timedelta(days=1)
        return None


@dataclass(frozen=True)
class Active:
    key: str  # window id and the date it started: a new key is a new first-person-in
    first_person_in: bool


def active_window(
    windows: Iterable[Window], holidays: Collection[date], local: datetime, device_id: str
) -> Active | None:
    """The schedule window open at `local` for `device_id` (None: the door stays locked).

    Of several open windows, one without first-person-in wins (the door is held at once).
    """
    found: list[Active] = []
    for w in sorted(windows, key=lambda w: w.id):
        if w.device_id is not None and w.device_id != device_id:
            continue
        started = w.started_on(local)
        if started is None or started in holidays:
            continue
        found.append(Active(f"{w.id}@{started.isoformat()}", w.first_person_in))
    if not found:
        return None
    return next((a for a in found if not a.first_person_in), found[0])


def validate_window(weekdays: int, start_minute: int, end_minute: int) -> None:
    """ValueError naming what is wrong with a window's values."""
    if not 1 <= weekdays <= 127:
        raise ValueError("weekdays: pick at least one day (mask 1-127, bit 0 = Monday)")
    if not 0 <= start_minute < MINUTES_PER_DAY:
        raise ValueError("start: must be a time of day 00:00-23:59")
    if not 0 < end_minute <= MINUTES_PER_DAY:
        raise ValueError("end: must be a time of day 00:01-24:00")
    if start_minute == end_minute:
        raise ValueError("end: must differ from start")
