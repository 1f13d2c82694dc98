"""Owns the access-policy pages: guest codes (issue, show once, revoke, uses per door), the
door's unlock schedule and holidays (.ics import), and the lockdown switch."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from appliance.store.guests import GuestError, create_guest_code, create_offline_code, list_codes
from appliance.store.guests import revoke as revoke_code
from appliance.store.lockdown import read_lockdown, write_lockdown
from appliance.store.schedules import (
    ScheduleError,
    add_holiday,
    add_window,
    delete_holiday,
    delete_window,
    import_ics,
    list_schedule,
    parse_minute,
    parse_weekdays,
)

from .common import (
    actor,
    audit,
    get_config,
    get_db,
    get_door,
    get_local_db,
    get_sync,
    parse_local_dt,
    pin_hasher,
)

log = logging.getLogger(__name__)

bp = Blueprint("policies", __name__, url_prefix="/policies")


def _synced() -> None:
    sync = get_sync()
    if sync is not None:
        sync.trigger()  # doors see the change at once, not at the next interval


# ---- guest codes ---------------------------------------------------------------------------
@bp.get("/guests")
def guests() -> Any:
    return render_template("guests.html", codes=list_codes(get_db()), issued=None, form={},
                           device_id=get_config().device.id)  # fmt: skip


@bp.post("/guests")
def guest_add() -> Any:
    f = request.form
    form = {k: f.get(k, "") for k in ("name", "uses", "from", "until", "doors", "days",
                                      "start", "end", "kind")}  # fmt: skip
    try:
        issued = _issue(form)
    except (GuestError, ScheduleError, ValueError) as exc:
        flash(str(exc), "error")
        return (
            render_template("guests.html", codes=list_codes(get_db()), issued=None, form=form,
                            device_id=get_config().device.id),
            400,
        )  # fmt: skip
    audit(
        "guest_code_created",
        str(issued.code.id),
        name=issued.code.name,
        kind=issued.code.kind,
        doors=issued.code.doors,
    )  # fmt: skip (never the code itself)
    _synced()
    # the keys are shown on this response only; they are stored nowhere but as a hash
    return render_template("guests.html", codes=list_codes(get_db()), issued=issued, form={},
                           device_id=get_config().device.id)  # fmt: skip


def _issue(form: dict[str, str]) -> Any:
    doors = [d.strip() for d in form["doors"].split(",") if d.strip()] or None
    if form["kind"] == "offline":
        door = (doors or [get_config().device.id])[0]
        if doors and len(doors) > 1:
            raise GuestError("doors: an offline code is signed for exactly one door")
        today = datetime.now().astimezone().date()
        first = _day(form["from"], "from") or today
        last = _day(form["until"], "until") or first
        return create_offline_code(get_db(), pin_hasher(), name=form["name"], door=door,
                                   first=first, last=last, today=today, by=actor())  # fmt: skip
    uses = None
    if form["uses"].strip():
        try:
            uses = int(form["uses"])
        except ValueError:
            raise GuestError(f"uses: {form['uses']!r} is not a whole number") from None
    windows = None
    if any(form[k].strip() for k in ("days", "start", "end")):
        windows = [[parse_weekdays(form["days"] or "all"),
                    parse_minute(form["start"] or "00:00", "start"),
                    parse_minute(form["end"] or "24:00", "end")]]  # fmt: skip
    return create_guest_code(
        get_db(), pin_hasher(), name=form["name"], doors=doors,
        valid_from=parse_local_dt(form["from"], "from"),
        valid_until=parse_local_dt(form["until"], "until"),
        windows=windows, max_uses=uses, by=actor(),
    )  # fmt: skip


def _day(text: str, field: str) -> date | None:
    text = (text or "").strip()[:10]
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise GuestError(f"{field}: {text!r} is not a date YYYY-MM-DD") from None


@bp.post("/guests/<int:code_id>/revoke")
def guest_revoke(code_id: int) -> Any:
    try:
        row = revoke_code(get_db(), code_id, by=actor())
    except GuestError:
        abort(404)
    audit("guest_code_revoked", str(code_id), name=row.name)
    _synced()
    flash(f"Guest code {row.name!r} revoked; doors refuse it from their next sync.", "ok")
    return redirect(url_for("policies.guests"))


# ---- schedule, holidays, lockdown ---------------------------------------------------------------
@bp.get("/schedule")
def schedule() -> Any:
    door = get_door()
    state = read_lockdown(get_local_db())
    return render_template(
        "schedule.html", sched=list_schedule(get_db()), lockdown=state,
        status=door.status() if door is not None else None,
    )  # fmt: skip


@bp.post("/schedule/windows")
def window_add() -> Any:
    f = request.form
    try:
        row = add_window(
            get_db(), device_id=(f.get("door") or "").strip() or None,
            weekdays=parse_weekdays(f.get("days", "")),
            start_minute=parse_minute(f.get("start", ""), "start"),
            end_minute=parse_minute(f.get("end", ""), "end"),
            first_person_in=f.get("first_person_in") == "1", label=f.get("label", ""),
        )  # fmt: skip
    except ScheduleError as exc:
        flash(str(exc), "error")
        return redirect(url_for("policies.schedule"))
    audit("schedule_window_added", str(row.id), door=row.device_id)
    _synced()
    return redirect(url_for("policies.schedule"))


@bp.post("/schedule/windows/<int:window_id>/delete")
def window_delete(window_id: int) -> Any:
    try:
        delete_window(get_db(), window_id)
    except ScheduleError:
        abort(404)
    audit("schedule_window_removed", str(window_id))
    _synced()
    return redirect(url_for("policies.schedule"))


@bp.post("/schedule/holidays")
def holiday_add() -> Any:
    f = request.form
    door = (f.get("door") or "").strip() or None
    upload = request.files.get("ics")
    try:
        if upload is not None and upload.filename:
            added = import_ics(get_db(), upload.read(1_000_001), door)
            flash(f"{added} holiday(s) imported from {upload.filename}.", "ok")
        else:
            day = _day(f.get("day", ""), "day")
            if day is None:
                raise ScheduleError("day: give a date, or an .ics file to import")
            added = int(add_holiday(get_db(), day, f.get("name", ""), door))
    except (ScheduleError, GuestError) as exc:
        flash(str(exc), "error")
        return redirect(url_for("policies.schedule"))
    audit("holidays_added", door or "*", count=added)
    _synced()
    return redirect(url_for("policies.schedule"))


@bp.post("/schedule/holidays/<int:holiday_id>/delete")
def holiday_delete(holiday_id: int) -> Any:
    try:
        delete_holiday(get_db(), holiday_id)
    except ScheduleError:
        abort(404)
    audit("holiday_removed", str(holiday_id))
    _synced()
    return redirect(url_for("policies.schedule"))


@bp.post("/lockdown")
def lockdown() -> Any:
    on = request.form.get("on") == "1"
    door = get_door()
    if door is not None:
        door.set_lockdown(on, by=actor(), source="admin")
    else:  # the admin page as its own service: the door polls its database within a second
        write_lockdown(get_local_db(), on, by=actor(), source="admin")
    audit("lockdown_on" if on else "lockdown_off", get_config().device.id)
    flash("Lockdown on: every code is refused except admins'." if on else "Lockdown off.",
          "ok")  # fmt: skip
    return redirect(url_for("policies.schedule"))
