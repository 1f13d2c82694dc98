"""The pure schedule: weekly windows (overnight too), holidays, first-person-in priority; and
the .ics reader that turns calendar events into holiday dates."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.core.schedule import Window, active_window

MON_FRI = 0b0011111
WED = date(2026, 12, 2)  # a Wednesday


def at(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hh, mm)


def test_a_weekday_window_opens_and_closes_on_time() -> None:
    w = [Window(1, MON_FRI, 8 * 60, 17 * 60)]
    assert active_window(w, set(), at(WED, 7, 59), "d") is None
    a = active_window(w, set(), at(WED, 8, 0), "d")
    assert a is not None and a.key == "1@2026-12-02" and not a.first_person_in
    assert active_window(w, set(), at(WED, 17, 0), "d") is None
    assert active_window(w, set(), at(date(2026, 12, 5), 9), "d") is None  # Saturday


def test_an_overnight_window_belongs_to_the_day_it_started_and_a_holiday_closes_it() -> None:
    w = [Window(2, 1 << 2, 22 * 60, 6 * 60)]  # Wednesday 22:00 to Thursday 06:00
    thu = date(2026, 12, 3)
    assert active_window(w, set(), at(thu, 5, 59), "d").key == "2@2026-12-02"  # type: ignore[union-attr]
    assert active_window(w, set(), at(thu, 6), "d") is None
    assert active_window(w, {WED}, at(thu, 1), "d") is None  # started on a holiday
    assert active_window(w, {thu}, at(thu, 1), "d") is not None


def test_several_windows_a_day_and_door_filters() -> None:
    w = [
        Window(1, MON_FRI, 8 * 60, 12 * 60, first_person_in=True),
        Window(2, MON_FRI, 14 * 60, 18 * 60),
        Window(3, MON_FRI, 10 * 60, 11 * 60, device_id="back"),
    ]
    assert active_window(w, set(), at(WED, 9), "front").first_person_in  # type: ignore[union-attr]
    assert active_window(w, set(), at(WED, 13), "front") is None
    assert active_window(w, set(), at(WED, 15), "front").key == "2@2026-12-02"  # type: ignore[union-attr]
    # overlapping: the window without first-person-in wins (the door is held at once)
    assert active_window(w, set(), at(WED, 10, 30), "back").key == "3@2026-12-02"  # type: ignore[union-attr]


@given(
    weekdays=st.integers(1, 127),
    start=st.integers(0, 1439),
    end=st.integers(1, 1440),
    day=st.dates(date(2026, 1, 1), date(2027, 12, 31)),
    minute=st.integers(0, 1439),
)
def test_a_window_is_open_exactly_when_its_day_and_minute_say_so(
    weekdays: int, start: int, end: int, day: date, minute: int
) -> None:
    if start == end:
        return
    w = Window(1, weekdays, start, end)
    local = at(day, minute // 60, minute % 60)
    started = w.started_on(local)
    if start < end:
        expect = bool(weekdays >> day.weekday() & 1) and start <= minute < end
        assert (started == day) == expect and (started is None) == (not expect)
    elif started is not None:
        assert started in (day, date.fromordinal(day.toordinal() - 1))
        assert bool(weekdays >> started.weekday() & 1)
    # a holiday on the day it started always closes it
    if started is not None:
        assert active_window([w], {started}, local, "d") is None


def test_ics_all_day_and_timed_events_become_days_and_a_repeating_one_is_refused() -> None:
    from appliance.store.schedules import ScheduleError, ics_days

    head = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n"
    ev = (b"BEGIN:VEVENT\r\nUID:1@t\r\nDTSTAMP:20260101T000000Z\r\n"
          b"DTSTART;VALUE=DATE:20261224\r\nDTEND;VALUE=DATE:20261227\r\nSUMMARY:Xmas\r\n"
          b"END:VEVENT\r\nBEGIN:VEVENT\r\nUID:2@t\r\nDTSTAMP:20260101T000000Z\r\n"
          b"DTSTART:20261231T090000Z\r\nDTEND:20261231T120000Z\r\nSUMMARY:Audit\r\n"
          b"END:VEVENT\r\n")  # fmt: skip
    days = ics_days(head + ev + b"END:VCALENDAR\r\n")
    assert days == [(date(2026, 12, 24), "Xmas"), (date(2026, 12, 25), "Xmas"),
                    (date(2026, 12, 26), "Xmas"), (date(2026, 12, 31), "Audit")]  # fmt: skip
    rrule = ev.replace(b"SUMMARY:Xmas\r\n", b"SUMMARY:Xmas\r\nRRULE:FREQ=YEARLY\r\n")
    with pytest.raises(ScheduleError, match="Xmas.*repeats"):
        ics_days(head + rrule + b"END:VCALENDAR\r\n")
    with pytest.raises(ScheduleError, match="not an iCalendar"):
        ics_days(b"hello")
