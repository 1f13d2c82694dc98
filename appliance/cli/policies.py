"""Owns `doorward guest`, `doorward lockdown` and `doorward schedule`: guest and offline codes,
the lockdown switch, unlock schedules and holidays. Every command prints JSON."""

from __future__ import annotations

import argparse
import getpass
import json
from datetime import date, datetime, time, timedelta
from typing import Any

from appliance.config import Config

from .common import CliError, command_db, existing_file, positive_int


def register(subparsers: Any) -> None:
    g = subparsers.add_parser("guest", help="guest and service codes (stored or offline)")
    gs = g.add_subparsers(dest="guest_cmd", required=True, metavar="ACTION")
    a = gs.add_parser("add", help="issue a guest code; prints it once, as JSON")
    a.add_argument("--name", required=True, help="who the code is for")
    a.add_argument("--uses", type=positive_int, help="how many times it opens (default: no limit)")
    a.add_argument("--from", dest="valid_from", metavar="ISO", help="valid from (default: now)")
    a.add_argument("--until", dest="valid_until", metavar="ISO", help="valid until")
    a.add_argument(
        "--door", action="append", metavar="ID", help="a door it opens (repeat; default: every)"
    )
    a.add_argument(
        "--offline",
        action="store_true",
        help="a code the door verifies without any sync (one door, whole days, no use limit)",
    )
    a.add_argument("--days", help="weekly window days, e.g. mon-fri (with --start/--end)")
    a.add_argument("--start", help="weekly window start HH:MM")
    a.add_argument("--end", help="weekly window end HH:MM")
    a.set_defaults(func=cmd_guest_add)
    r = gs.add_parser("revoke", help="revoke a guest code (doors refuse it after their next sync)")
    r.add_argument("id", type=positive_int, metavar="ID")
    r.set_defaults(func=cmd_guest_revoke)
    li = gs.add_parser("list", help="every guest code with its uses per door")
    li.set_defaults(func=cmd_guest_list)

    lk = subparsers.add_parser("lockdown", help="lockdown: refuse every code but admins'")
    lk.add_argument("state", choices=["on", "off", "status"])
    lk.add_argument("--by", help="who sets it (default: the login name)")
    lk.set_defaults(func=cmd_lockdown)

    s = subparsers.add_parser("schedule", help="unlock schedules and holidays")
    ss = s.add_subparsers(dest="schedule_cmd", required=True, metavar="ACTION")
    w = ss.add_parser("add", help="a weekly window during which the door is held unlocked")
    w.add_argument("--days", required=True, help="e.g. mon-fri, or sat,sun, or all")
    w.add_argument("--start", required=True, help="HH:MM")
    w.add_argument("--end", required=True, help="HH:MM (24:00 = midnight)")
    w.add_argument("--door", metavar="ID", help="the door (default: every door)")
    w.add_argument("--first-person-in", action="store_true",
                   help="stay locked until the first authorised user is granted")  # fmt: skip
    w.add_argument("--label", default="")
    w.set_defaults(func=cmd_schedule_add)
    rm = ss.add_parser("remove", help="remove a window")
    rm.add_argument("id", type=positive_int, metavar="ID")
    rm.set_defaults(func=cmd_schedule_remove)
    sl = ss.add_parser("list", help="windows and holidays")
    sl.set_defaults(func=cmd_schedule_list)
    h = ss.add_parser("holiday", help="add a holiday (the weekly schedule does not open)")
    h.add_argument("day", metavar="YYYY-MM-DD")
    h.add_argument("--name", default="")
    h.add_argument("--door", metavar="ID")
    h.set_defaults(func=cmd_holiday_add)
    hi = ss.add_parser("import-ics", help="add every day of an iCalendar (.ics) file as a holiday")
    hi.add_argument("file", type=existing_file)
    hi.add_argument("--door", metavar="ID")
    hi.set_defaults(func=cmd_holiday_import)


# ---- parsing --------------------------------------------------------------------------------
def parse_when(text: str | None, option: str, *, end: bool = False) -> datetime | None:
    """ISO date or date-time; a date alone is local midnight (for --until: the end of that
    day); a time without a zone is the local time zone."""
    if text is None:
        return None
    try:
        if len(text.strip()) == 10:
            d = date.fromisoformat(text.strip())
            value = datetime.combine(d + timedelta(days=1) if end else d, time.min)
        else:
            value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"{option}: {text!r} is not an ISO date or time (e.g. 2026-12-24 or "
            "2026-12-24T09:00+01:00)"
        ) from None
    return value if value.tzinfo is not None else value.astimezone()


def _print(obj: Any) -> None:
    print(json.dumps(obj, default=str), flush=True)


def _windows(args: argparse.Namespace) -> list[list[int]] | None:
    from appliance.store.schedules import ScheduleError, parse_minute, parse_weekdays

    given = [x is not None for x in (args.days, args.start, args.end)]
    if not any(given):
        return None
    if not all(given):
        raise CliError("--days, --start and --end: give all three for a weekly window")
    try:
        return [
            [
                parse_weekdays(args.days),
                parse_minute(args.start, "--start"),
                parse_minute(args.end, "--end"),
            ]
        ]
    except ScheduleError as exc:
        raise CliError(str(exc)) from None


# ---- guest ------------------------------------------------------------------------------------
def cmd_guest_add(args: argparse.Namespace) -> int:
    from appliance.security import pin_hasher
    from appliance.store.guests import GuestError, create_guest_code, create_offline_code

    config: Config = args.config
    valid_from = parse_when(args.valid_from, "--from")
    valid_until = parse_when(args.valid_until, "--until", end=True)
    windows = _windows(args)
    by = f"cli:{getpass.getuser()}"
    with command_db(args, GuestError) as db:
        hasher = pin_hasher(config, db)
        if args.offline:
            if args.uses is not None:
                raise CliError("--uses: an offline code has no use limit (only its days)")
            if windows is not None:
                raise CliError("--days: an offline code is valid whole days, no weekly window")
            doors = args.door or [config.device.id]
            if len(doors) != 1:
                raise CliError("--door: an offline code is signed for exactly one door")
            today = datetime.now().astimezone().date()
            first = valid_from.astimezone().date() if valid_from else today
            # --until is exclusive (a date means the end of that day): the last valid day
            last = (valid_until - timedelta(microseconds=1)).astimezone().date() if (
                valid_until
            ) else first  # fmt: skip
            issued = create_offline_code(
                db, hasher, name=args.name, door=doors[0], first=first, last=last,
                today=today, by=by,
            )  # fmt: skip
        else:
            issued = create_guest_code(
                db, hasher, name=args.name, doors=args.door, valid_from=valid_from,
                valid_until=valid_until, windows=windows, max_uses=args.uses, by=by,
            )  # fmt: skip
    _print(issued.as_dict())
    return 0


def cmd_guest_revoke(args: argparse.Namespace) -> int:
    from appliance.store.guests import GuestError, revoke

    with command_db(args, GuestError) as db:
        row = revoke(db, args.id, by=f"cli:{getpass.getuser()}")
    _print({"id": row.id, "name": row.name, "revoked_at": row.revoked_at})
    return 0


def cmd_guest_list(args: argparse.Namespace) -> int:
    from appliance.store.guests import list_codes

    with command_db(args) as db:
        _print(list_codes(db))
    return 0


# ---- lockdown -----------------------------------------------------------------------------------
def cmd_lockdown(args: argparse.Namespace) -> int:
    """On the door's own database: the running door picks it up within a second."""
    from appliance.store.lockdown import read_lockdown, write_lockdown

    with command_db(args, door=True) as db:
        if args.state != "status":
            write_lockdown(db, args.state == "on", by=args.by or getpass.getuser(), source="cli")
        state = read_lockdown(db)
    _print({"device": args.config.device.id, **state})
    return 0


# ---- schedule -----------------------------------------------------------------------------------
def cmd_schedule_add(args: argparse.Namespace) -> int:
    from appliance.store.schedules import ScheduleError, add_window, parse_minute, parse_weekdays

    try:
        weekdays = parse_weekdays(args.days)
        start = parse_minute(args.start, "--start")
        end = parse_minute(args.end, "--end")
    except ScheduleError as exc:
        raise CliError(str(exc)) from None
    with command_db(args, ScheduleError) as db:
        row = add_window(
            db, device_id=args.door, weekdays=weekdays, start_minute=start,
            end_minute=end, first_person_in=args.first_person_in, label=args.label,
        )  # fmt: skip
    _print({"id": row.id, "door": row.device_id, "weekdays": row.weekdays,
            "start": args.start, "end": args.end,
            "first_person_in": row.first_person_in})  # fmt: skip
    return 0


def cmd_schedule_remove(args: argparse.Namespace) -> int:
    from appliance.store.schedules import ScheduleError, delete_window

    with command_db(args, ScheduleError) as db:
        delete_window(db, args.id)
    _print({"removed": args.id})
    return 0


def cmd_schedule_list(args: argparse.Namespace) -> int:
    from appliance.store.schedules import list_schedule

    with command_db(args) as db:
        _print(list_schedule(db))
    return 0


def cmd_holiday_add(args: argparse.Namespace) -> int:
    from appliance.store.schedules import add_holiday

    try:
        day = date.fromisoformat(args.day)
    except ValueError:
        raise CliError(f"DAY: {args.day!r} is not a date YYYY-MM-DD") from None
    with command_db(args) as db:
        added = add_holiday(db, day, args.name, args.door)
    _print({"day": day.isoformat(), "added": added})
    return 0


def cmd_holiday_import(args: argparse.Namespace) -> int:
    from appliance.store.schedules import ScheduleError, import_ics

    with command_db(args, ScheduleError, prefix=f"{args.file}: ") as db:
        added = import_ics(db, args.file, args.door)
    _print({"file": str(args.file), "added": added})
    return 0
