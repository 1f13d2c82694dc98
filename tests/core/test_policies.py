"""Access policies in the pure state machine: guest codes, offline codes, lockdown, fire
release, the schedule's held unlock with first-person-in, auto-relock on close."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from appliance.core import (
    AccessController,
    CodeCheck,
    DoorClosed,
    DoorOpened,
    ExitPressed,
    FaceChecked,
    FireAlarm,
    GuestCheck,
    Hold,
    Lock,
    Policy,
    ScheduleChanged,
    SetLockdown,
    Tick,
    Unlock,
    Verdict,
)
from appliance.core import offline as oc
from tests.support.waiting import FakeClock

from .test_machine_rules import FakeCredentials, kinds, only, records, type_keys

ADMIN = 3  # user number of an admin-role user (PIN 4321)


class Creds(FakeCredentials):
    def check(self, user_number: int, pin: str) -> CodeCheck:
        if user_number == ADMIN:
            self.checks.append((user_number, pin))
            return (
                CodeCheck(Verdict.OK, 103, admin=True)
                if pin == "4321"
                else CodeCheck(Verdict.WRONG)
            )
        return super().check(user_number, pin)


class FakeGuests:
    """Stored code 1234567890 with `uses` left; offline codes checked with the real module."""

    def __init__(self, uses: int = 2, key: bytes = b"k" * 32, today: date = date(2026, 12, 2)):
        self.uses = uses
        self.key = key
        self.today = today
        self.revoked: set[int] = set()
        self.checked: list[str] = []

    def check_code(self, digits: str) -> GuestCheck:
        self.checked.append(digits)
        if digits != "1234567890":
            return GuestCheck(False, "wrong")
        if self.uses <= 0:
            return GuestCheck(False, "used_up", 7, "Plumber")
        self.uses -= 1
        return GuestCheck(True, "ok", 7, "Plumber")

    def check_offline(self, digits: str) -> GuestCheck:
        self.checked.append(digits)
        v = oc.verify(self.key, digits, self.today)
        if v.code is None:
            return GuestCheck(False, v.reason)
        if v.code.serial in self.revoked:
            return GuestCheck(False, "revoked", serial=v.code.serial)
        return GuestCheck(v.reason == "ok", v.reason, serial=v.code.serial)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


def machine(clock: FakeClock, guests: FakeGuests | None = None, **policy: float):
    return AccessController(Policy(**policy), Creds(), clock, guests=guests or FakeGuests())


def face_ok(m: AccessController, out: list) -> list:
    from appliance.core import CheckFace

    check = only(out, CheckFace)
    return m.handle(FaceChecked(check.attempt, True, 0.3, "match"))


# ---- guest codes ------------------------------------------------------------------------------
def test_a_two_use_guest_code_opens_twice_without_a_face_check_and_is_refused_the_third_time(
    clock: FakeClock,
) -> None:
    m = machine(clock)
    for _ in range(2):
        out = type_keys(m, "0*1234567890#")
        assert isinstance(out[out.index(only(out, Unlock))], Unlock)
        rec = only([r for r in records(out) if r.kind == "guest_entry"], object)
        assert rec.alert and rec.snapshot == "capture" and rec.detail["guest_id"] == 7
        assert not any(type(c).__name__ == "CheckFace" for c in out)
        # the pulse comes before the record, as for a user's grant
        assert out.index(only(out, Unlock)) < out.index(rec)
        clock.advance(10)
        m.handle(Tick())
    out = type_keys(m, "0*1234567890#")
    assert kinds(out) == ["code_wrong"] and records(out)[0].reason == "guest_used_up"
    assert not any(isinstance(c, Unlock) for c in out)


def test_a_guest_code_without_a_guests_port_is_a_wrong_code(clock: FakeClock) -> None:
    m = AccessController(Policy(), Creds(), clock)
    out = type_keys(m, "0*1234567890#")
    assert kinds(out) == ["code_wrong"]


# ---- offline codes ------------------------------------------------------------------------------
def test_offline_code_round_trip_window_and_wrong_tag() -> None:
    key = b"door-key" * 4
    today = date(2026, 12, 2)
    digits = oc.issue(key, 5, today, today + timedelta(days=2), today)
    assert len(digits) == 10 and digits.isdigit()
    for d in range(3):
        v = oc.verify(key, digits, today + timedelta(days=d))
        assert v.reason == "ok" and v.code is not None and v.code.serial == 5
    assert oc.verify(key, digits, today + timedelta(days=3)).reason == "expired"
    assert oc.verify(key, digits, today - timedelta(days=1)).reason == "not_yet_valid"
    # another door's key, or any changed digit, is a wrong code
    assert oc.verify(b"other" * 8, digits, today).reason == "wrong"
    flipped = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    assert oc.verify(key, flipped, today).reason == "wrong"
    # a cycle later (64 days) the same digits do not come back to life
    assert oc.verify(key, digits, today + timedelta(days=oc.CYCLE_DAYS)).reason == "wrong"


def test_offline_code_issue_refuses_what_it_cannot_carry_naming_the_option() -> None:
    key, today = b"k" * 32, date(2026, 12, 2)
    with pytest.raises(oc.OfflineCodeError, match="--until.*at most 31 days"):
        oc.issue(key, 0, today, today + timedelta(days=40), today)
    with pytest.raises(oc.OfflineCodeError, match="--until.*before"):
        oc.issue(key, 0, today, today - timedelta(days=1), today)
    with pytest.raises(oc.OfflineCodeError, match="--from"):
        oc.issue(key, 0, today + timedelta(days=70), today + timedelta(days=71), today)
    with pytest.raises(oc.OfflineCodeError, match="serial"):
        oc.issue(key, 32, today, today, today)


def test_random_offline_codes_are_accepted_about_once_in_tags() -> None:
    """The guessing probability the docs state: a made-up code passes with p = 1/TAGS."""
    import random

    rng = random.Random(17)
    key, today = b"k" * 32, date(2026, 12, 2)
    hits = sum(
        oc.verify(key, f"{rng.randrange(10**10):010d}", today).code is not None
        for _ in range(40_000)
    )
    # expected 40_000 * 2 / 157_510 = 0.51 (two candidate cycles checked); far below 1 in 1000
    assert hits <= 5


def test_wrong_offline_codes_suspend_offline_entry_but_not_user_codes(clock: FakeClock) -> None:
    g = FakeGuests()
    m = machine(clock, g, offline_fail_limit=3, wrong_code_limit=10)
    for _ in range(3):
        out = type_keys(m, "00*0000000001#")
        clock.advance(1)
    assert "lockout" in kinds(out)
    lock = next(r for r in records(out) if r.kind == "lockout")
    assert lock.reason == "offline_codes" and lock.alert
    assert m.offline_suspended_remaining > 0
    good = oc.issue(g.key, 1, g.today, g.today, g.today)
    g.checked.clear()
    out = type_keys(m, f"00*{good}#")
    assert g.checked == [] and records(out)[0].reason == "offline_suspended"
    out = type_keys(m, "1*1234#")  # users are not affected
    assert "CheckFace" in [type(c).__name__ for c in out]
    clock.advance(21600)
    m.handle(Tick())
    out = type_keys(m, f"00*{good}#")
    assert "guest_entry" in kinds(out)


def test_the_offline_budget_survives_a_restart(clock: FakeClock) -> None:
    m = machine(clock, offline_fail_limit=3)
    type_keys(m, "00*0000000001#")
    type_keys(m, "00*0000000002#")
    saved = m.budget()
    m2 = machine(clock, offline_fail_limit=3)
    m2.restore_budget(saved)
    out = type_keys(m2, "00*0000000003#")
    assert any(r.reason == "offline_codes" for r in records(out))


def test_a_revoked_offline_code_is_refused(clock: FakeClock) -> None:
    g = FakeGuests()
    m = machine(clock, g)
    good = oc.issue(g.key, 9, g.today, g.today, g.today)
    assert "guest_entry" in kinds(type_keys(m, f"00*{good}#"))
    clock.advance(10)
    m.handle(Tick())
    g.revoked.add(9)
    out = type_keys(m, f"00*{good}#")
    assert records(out)[0].reason == "guest_revoked" and not any(isinstance(c, Unlock) for c in out)


# ---- lockdown -------------------------------------------------------------------------------
def test_lockdown_refuses_a_users_right_code_with_an_alert_but_lets_an_admin_in(
    clock: FakeClock,
) -> None:
    m = machine(clock)
    out = m.handle(SetLockdown(True, by="admin", source="cli"))
    rec = only(records(out), object)
    assert (
        rec.kind == "lockdown_on" and rec.alert and rec.detail == {"by": "admin", "source": "cli"}
    )
    assert m.lockdown
    out = type_keys(m, "1*1234#")
    assert kinds(out) == ["lockdown_refused"] and records(out)[0].alert
    assert not any(type(c).__name__ in ("CheckFace", "Unlock") for c in out)
    assert m.budget().wrong_ages == ()  # a right code is not a guess
    out = type_keys(m, "0*1234567890#")
    assert kinds(out) == ["lockdown_refused"]
    out = type_keys(m, f"{ADMIN}*4321#")
    assert any(isinstance(c, Unlock) for c in face_ok(m, out))
    # the exit button still works
    clock.advance(10)
    m.handle(Tick())
    assert any(isinstance(c, Unlock) for c in m.handle(ExitPressed()))
    assert kinds(m.handle(SetLockdown(True, by="x"))) == []  # already on: nothing new
    assert kinds(m.handle(SetLockdown(False, by="admin"))) == ["lockdown_off"]


def test_a_duress_code_in_lockdown_is_refused_like_the_pin_and_still_alerts(
    clock: FakeClock,
) -> None:
    m = machine(clock)
    m.handle(SetLockdown(True, by="a"))
    type_keys(m, "1*9999")
    out = type_keys(m, "#")
    assert kinds(out) == ["lockdown_refused", "duress"]
    type_keys(m, "1*1234")
    normal = type_keys(m, "#")
    # the same feedback at the same place; the duress record comes after it
    assert out[:2] == normal[:2] and type(out[1]).__name__ == "Signal"


# ---- fire -------------------------------------------------------------------------------------
def test_fire_input_holds_the_lock_released_records_decisions_and_relocks_when_it_clears(
    clock: FakeClock,
) -> None:
    m = machine(clock)
    out = m.handle(FireAlarm(True))
    assert only(out, Hold).reason == "fire" and m.relay_held
    assert "fire_alarm" in kinds(out) and records(out)[0].alert
    clock.advance(3600)  # no pulse timer: held for as long as the alarm lasts
    assert not any(isinstance(c, Lock) for c in m.handle(Tick()))
    out = face_ok(m, type_keys(m, "1*1234#"))
    granted = next(r for r in records(out) if r.kind == "granted")
    assert granted.detail.get("fire") is True
    assert not any(isinstance(c, (Unlock, Lock)) for c in out)  # relay unchanged
    assert kinds(m.handle(DoorOpened())) == ["door_opened"]  # egress is not forced
    m.handle(DoorClosed())
    m.handle(SetLockdown(True, by="a"))  # lockdown does not lock a fire exit
    assert m.relay_held
    out = m.handle(FireAlarm(False))
    assert "fire_cleared" in kinds(out) and any(isinstance(c, Lock) for c in out)
    assert not m.relay_on


# ---- schedule ---------------------------------------------------------------------------------
def test_a_schedule_window_without_first_person_in_holds_the_door_unlocked_at_once(
    clock: FakeClock,
) -> None:
    m = machine(clock)
    out = m.handle(ScheduleChanged("1@2026-12-02", first_person_in=False))
    assert only(out, Hold).reason == "schedule" and "schedule_unlocked" in kinds(out)
    out = m.handle(ScheduleChanged(None))
    assert any(isinstance(c, Lock) for c in out) and "schedule_locked" in kinds(out)


def test_the_schedules_held_unlock_starts_only_after_the_first_authorised_entry(
    clock: FakeClock,
) -> None:
    m = machine(clock)
    out = m.handle(ScheduleChanged("1@2026-12-02", first_person_in=True))
    assert not any(isinstance(c, (Hold, Unlock)) for c in out) and not m.relay_on
    assert m.schedule_waiting_first_person
    # the exit button and a guest do not count as the first person in
    m.handle(ExitPressed())
    clock.advance(6)
    m.handle(Tick())
    type_keys(m, "0*1234567890#")
    clock.advance(6)
    m.handle(Tick())
    assert not m.relay_on and m.schedule_waiting_first_person
    # a wrong face does not count either
    from appliance.core import CheckFace

    out = type_keys(m, "1*1234#")
    m.handle(FaceChecked(only(out, CheckFace).attempt, False, 0.9, "mismatch"))
    assert not m.relay_on
    out = face_ok(m, type_keys(m, "2*5678#"))
    assert only(out, Hold).reason == "schedule"
    assert "schedule_unlocked" in kinds(out)
    granted = next(r for r in records(out) if r.kind == "granted")
    assert granted.detail["first_person_in"] is True
    clock.advance(4 * 3600)
    assert not any(isinstance(c, Lock) for c in m.handle(Tick()))
    assert m.relay_held
    # the next day's window waits for its own first person
    m.handle(ScheduleChanged(None))
    assert not m.relay_on
    m.handle(ScheduleChanged("1@2026-12-03", first_person_in=True))
    assert not m.relay_on


def test_lockdown_suspends_the_schedule_and_it_resumes_after(clock: FakeClock) -> None:
    m = machine(clock)
    m.handle(ScheduleChanged("1@2026-12-02"))
    out = m.handle(SetLockdown(True, by="a"))
    assert any(isinstance(c, Lock) for c in out) and not m.relay_on
    out = m.handle(SetLockdown(False, by="a"))
    assert only(out, Hold).reason == "schedule"


# ---- auto-relock on close -----------------------------------------------------------------
def test_auto_relock_waits_for_the_door_to_be_closed_for_relock_after_close_s(
    clock: FakeClock,
) -> None:
    m = machine(clock, relock_after_close_s=3.0, relay_pulse_s=5.0, held_open_s=30.0)
    out = face_ok(m, type_keys(m, "1*1234#"))
    assert only(out, Unlock).seconds == 5.0
    out = m.handle(DoorOpened())
    # from now on the relay is held, not timed: the pulse's end must not lock an open door
    assert only(out, Hold).reason == "door_open"
    clock.advance(20)
    assert not any(isinstance(c, Lock) for c in m.handle(Tick()))
    clock.advance(11)
    assert "held_open" in kinds(m.handle(Tick()))  # held-open rule unchanged
    m.handle(DoorClosed())
    clock.advance(2.9)
    assert not any(isinstance(c, Lock) for c in m.handle(Tick()))
    m.handle(DoorOpened())  # reopened before the 3 s: the count starts again
    m.handle(DoorClosed())
    clock.advance(2.9)
    assert not any(isinstance(c, Lock) for c in m.handle(Tick()))
    clock.advance(0.2)
    assert any(isinstance(c, Lock) for c in m.handle(Tick()))
    assert not m.relay_on


def test_auto_relock_leaves_a_pulse_whose_door_never_opened_alone(clock: FakeClock) -> None:
    m = machine(clock, relock_after_close_s=3.0, relay_pulse_s=5.0)
    face_ok(m, type_keys(m, "1*1234#"))
    clock.advance(5.0)
    assert any(isinstance(c, Lock) for c in m.handle(Tick()))


def test_auto_relock_after_fire_clears_with_the_door_open(clock: FakeClock) -> None:
    m = machine(clock, relock_after_close_s=2.0)
    m.handle(FireAlarm(True))
    m.handle(DoorOpened())
    out = m.handle(FireAlarm(False))
    assert not any(isinstance(c, Lock) for c in out) and m.held_reason == "door_open"
    m.handle(DoorClosed())
    clock.advance(2.0)
    assert any(isinstance(c, Lock) for c in m.handle(Tick()))


def test_without_auto_relock_the_old_rules_hold(clock: FakeClock) -> None:
    m = machine(clock)
    face_ok(m, type_keys(m, "1*1234#"))
    m.handle(DoorOpened())
    assert any(isinstance(c, Lock) for c in m.handle(DoorClosed()))
