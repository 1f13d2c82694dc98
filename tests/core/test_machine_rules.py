"""Rules of the access state machine, one behaviour per test."""

from __future__ import annotations

import pytest

from appliance.core import (
    AccessController,
    CheckFace,
    CodeCheck,
    DoorClosed,
    DoorOpened,
    ExitPressed,
    FaceChecked,
    KeyPressed,
    Lock,
    MotionDetected,
    Policy,
    Record,
    State,
    TamperTriggered,
    Tick,
    Unlock,
    Verdict,
)
from tests.support.waiting import FakeClock

USERS = {1: ("1234", "9999", 101), 2: ("5678", None, 102)}


class FakeCredentials:
    def __init__(self) -> None:
        self.checks: list[tuple[int, str]] = []

    def check(self, user_number: int, pin: str) -> CodeCheck:
        self.checks.append((user_number, pin))
        if user_number not in USERS:
            return CodeCheck(Verdict.WRONG)
        good, duress, uid = USERS[user_number]
        if pin == good:
            return CodeCheck(Verdict.OK, uid)
        if duress and pin == duress:
            return CodeCheck(Verdict.DURESS, uid)
        return CodeCheck(Verdict.WRONG)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(100.0)


@pytest.fixture
def creds() -> FakeCredentials:
    return FakeCredentials()


@pytest.fixture
def m(clock: FakeClock, creds: FakeCredentials) -> AccessController:
    return AccessController(Policy(), creds, clock)


def type_keys(m: AccessController, keys: str) -> list:
    out = []
    for k in keys:
        out += m.handle(KeyPressed(k))
    return out


def records(cmds: list) -> list[Record]:
    return [c for c in cmds if isinstance(c, Record)]


def kinds(cmds: list) -> list[str]:
    return [r.kind for r in records(cmds)]


def only(cmds: list, cls: type):
    found = [c for c in cmds if isinstance(c, cls)]
    assert len(found) == 1, cmds
    return found[0]


def test_right_code_asks_for_the_face_of_that_user(m: AccessController) -> None:
    out = type_keys(m, "1*1234#")
    check = only(out, CheckFace)
    assert (check.user_id, check.user_number) == (101, 1)
    assert m.state is State.CHECKING_FACE
    assert not any(isinstance(c, Unlock) for c in out)


def test_matching_face_grants_one_pulse_of_the_configured_length(
    m: AccessController, clock: FakeClock
) -> None:
    check = only(type_keys(m, "1*1234#"), CheckFace)
    out = m.handle(FaceChecked(check.attempt, True, 0.31, "match", "snap.jpg"))
    assert kinds(out) == ["granted"]
    assert only(out, Unlock).seconds == 5.0
    assert records(out)[0].snapshot == "snap.jpg"
    # the relay opens before the event is written: the fsync is not on the path to the lock
    assert out.index(only(out, Unlock)) < out.index(only(out, Record))
    clock.t += 4.9
    assert not any(isinstance(c, Lock) for c in m.handle(Tick()))
    clock.t += 0.1
    assert any(isinstance(c, Lock) for c in m.handle(Tick()))
    assert not m.relay_on


def test_mismatched_face_denies_with_alert_and_snapshot(m: AccessController) -> None:
    check = only(type_keys(m, "1*1234#"), CheckFace)
    out = m.handle(FaceChecked(check.attempt, False, 0.82, "mismatch", "snap.jpg"))
    rec = only(out, Record)
    assert (rec.kind, rec.alert, rec.snapshot, rec.distance) == (
        "denied_face",
        True,
        "snap.jpg",
        0.82,
    )
    assert not any(isinstance(c, Unlock) for c in out)


def test_no_face_denies_as_no_face(m: AccessController) -> None:
    check = only(type_keys(m, "2*5678#"), CheckFace)
    out = m.handle(FaceChecked(check.attempt, False, None, "no_face"))
    assert kinds(out) == ["denied_no_face"]
    assert records(out)[0].snapshot == "capture"


def test_double_star_clears_the_entry(m: AccessController, creds: FakeCredentials) -> None:
    type_keys(m, "1*12**")
    assert m.entered_length == 0
    out = type_keys(m, "1*1234#")
    assert creds.checks == [(1, "1234")]
    assert any(isinstance(c, CheckFace) for c in out)


def test_ten_seconds_of_silence_clears_the_entry(
    m: AccessController, clock: FakeClock, creds: FakeCredentials
) -> None:
    type_keys(m, "1*12")
    clock.t += 9.9
    m.handle(Tick())
    assert m.entered_length == 4
    clock.t += 0.1
    m.handle(Tick())
    assert m.entered_length == 0
    type_keys(m, "34#")
    assert creds.checks == []  # "34" alone is malformed, never checked as user 1


def test_five_wrong_codes_lock_out_for_five_minutes_with_photo_alert(
    m: AccessController, clock: FakeClock, creds: FakeCredentials
) -> None:
    for _ in range(4):
        out = type_keys(m, "1*0000#")
        assert kinds(out) == ["code_wrong"]
        clock.t += 60
    out = type_keys(m, "1*0000#")
    assert kinds(out) == ["code_wrong", "lockout"]
    lockout = records(out)[1]
    assert lockout.alert and lockout.snapshot == "capture"
    assert m.state is State.LOCKED_OUT
    creds.checks.clear()
    clock.t += 299
    out = type_keys(m, "1*1234#")
    assert creds.checks == [] and not any(isinstance(c, CheckFace) for c in out)
    assert "locked_out" not in kinds(out)  # one event per lockout, not one per press
    clock.t += 1
    ended = [r for r in records(m.handle(Tick())) if r.kind == "lockout_ended"]
    assert len(ended) == 1 and ended[0].detail == {"refused": 1}
    assert any(isinstance(c, CheckFace) for c in type_keys(m, "1*1234#"))


def test_wrong_codes_outside_the_window_do_not_add_up(
    m: AccessController, clock: FakeClock
) -> None:
    for _ in range(8):
        assert "lockout" not in kinds(type_keys(m, "1*0000#"))
        clock.t += 200  # 4 per 600 s at most
    assert m.state is not State.LOCKED_OUT


def test_duress_pin_opens_like_success_and_raises_silent_priority_alert(
    m: AccessController,
) -> None:
    out = type_keys(m, "1*9999#")
    duress = only(out, Record)
    assert (duress.kind, duress.alert, duress.urgent) == ("duress", True, True)
    check = only(out, CheckFace)
    out = m.handle(FaceChecked(check.attempt, True, 0.3, "match"))
    assert kinds(out) == ["granted"]
    assert records(out)[0].detail == {"duress": True}
    assert only(out, Unlock).seconds == 5.0


def test_door_opened_without_grant_is_forced(m: AccessController) -> None:
    out = m.handle(DoorOpened())
    rec = only(out, Record)
    assert (rec.kind, rec.alert, rec.urgent) == ("forced", True, True)


def test_door_opened_during_grant_or_after_exit_is_normal(
    m: AccessController, clock: FakeClock
) -> None:
    check = only(type_keys(m, "1*1234#"), CheckFace)
    m.handle(FaceChecked(check.attempt, True, 0.3, "match"))
    assert kinds(m.handle(DoorOpened())) == ["door_opened"]
    out = m.handle(DoorClosed())
    assert any(isinstance(c, Lock) for c in out)  # relocks when the door shuts
    clock.t += 10
    assert kinds(m.handle(ExitPressed())) == ["exit"]
    assert kinds(m.handle(DoorOpened())) == ["door_opened"]


def test_door_opened_just_after_relock_is_within_grace_but_not_later(
    m: AccessController, clock: FakeClock
) -> None:
    m.handle(ExitPressed())
    clock.t += 5.0
    m.handle(Tick())
    clock.t += 1.0
    assert kinds(m.handle(DoorOpened())) == ["door_opened"]
    m.handle(DoorClosed())
    clock.t += 5.0
    assert kinds(m.handle(DoorOpened())) == ["forced"]


def test_door_held_open_past_30_s_alerts_once(m: AccessController, clock: FakeClock) -> None:
    m.handle(ExitPressed())
    m.handle(DoorOpened())
    clock.t += 29.9
    assert "held_open" not in kinds(m.handle(Tick()))
    clock.t += 0.1
    out = m.handle(Tick())
    assert kinds(out) == ["held_open"] and records(out)[0].alert
    clock.t += 60
    assert "held_open" not in kinds(m.handle(Tick()))


def test_tamper_alerts_with_priority(m: AccessController) -> None:
    rec = only(m.handle(TamperTriggered()), Record)
    assert (rec.kind, rec.alert, rec.urgent) == ("tamper", True, True)


def test_motion_is_logged_once_per_wake_without_alert(
    m: AccessController, clock: FakeClock
) -> None:
    first = records(m.handle(MotionDetected()))
    assert [(r.kind, r.alert) for r in first] == [("motion", False)]
    clock.t += 10
    assert records(m.handle(MotionDetected())) == []
    clock.t += 31
    assert kinds(m.handle(MotionDetected())) == ["motion"]


def test_late_face_answer_after_timeout_is_ignored(m: AccessController, clock: FakeClock) -> None:
    check = only(type_keys(m, "1*1234#"), CheckFace)
    clock.t += Policy().face_timeout_s
    assert kinds(m.handle(Tick())) == ["denied_no_face"]
    out = m.handle(FaceChecked(check.attempt, True, 0.2, "match"))
    assert out == []
    assert not m.relay_on


def test_repeated_face_failures_lock_out(m: AccessController) -> None:
    for _ in range(3):
        check = only(type_keys(m, "1*1234#"), CheckFace)
        out = m.handle(FaceChecked(check.attempt, False, 0.9, "mismatch"))
    assert kinds(out) == ["denied_face", "lockout"]
    assert records(out)[1].reason == "face_failures"


def test_keys_during_face_check_are_ignored(m: AccessController, creds: FakeCredentials) -> None:
    type_keys(m, "1*1234#")
    assert type_keys(m, "2*5678#") == []
    assert creds.checks == [(1, "1234")]


@pytest.mark.parametrize("code", ["1234#", "*1234#", "1*#", "12345678901234567"])
def test_malformed_codes_count_as_wrong_or_clear(m: AccessController, code: str) -> None:
    out = type_keys(m, code)
    assert not any(isinstance(c, CheckFace) for c in out)


def test_unknown_key_is_rejected(m: AccessController) -> None:
    from appliance.core import HandleError

    with pytest.raises(HandleError) as err:
        m.handle(KeyPressed("x"))
    assert isinstance(err.value.__cause__, ValueError)
    assert "unknown key" in str(err.value.__cause__)


def test_camera_streams_from_wake_until_the_door_is_quiet(
    m: AccessController, clock: FakeClock
) -> None:
    from appliance.core import SleepCamera, WakeCamera

    out = m.handle(MotionDetected())
    assert sum(isinstance(c, WakeCamera) for c in out) == 1 and m.camera_awake
    clock.t += 20
    assert not any(isinstance(c, WakeCamera) for c in type_keys(m, "1*12"))  # already awake
    clock.t += 29  # keys extended the wake: 30 s after the last key
    assert not any(isinstance(c, SleepCamera) for c in m.handle(Tick()))
    type_keys(m, "34#")  # face check starts
    clock.t += 14
    assert not any(isinstance(c, SleepCamera) for c in m.handle(Tick()))  # never mid-check
    clock.t += 31
    out = m.handle(Tick())  # the check timed out long ago; the door is quiet
    assert any(isinstance(c, SleepCamera) for c in out) and not m.camera_awake
    out = type_keys(m, "2")
    assert any(isinstance(c, WakeCamera) for c in out)  # typing wakes it even without PIR


def test_someone_lingering_without_a_code_is_identified(
    m: AccessController, clock: FakeClock
) -> None:
    from appliance.core import FaceIdentified, IdentifyFace

    m.handle(MotionDetected())
    clock.t += 19.9
    assert not any(isinstance(c, IdentifyFace) for c in m.handle(Tick()))
    clock.t += 0.1
    ident = only(m.handle(Tick()), IdentifyFace)
    out = m.handle(FaceIdentified(ident.attempt, True, None, 0.81, "s.jpg"))
    rec = only(out, Record)
    assert (rec.kind, rec.alert, rec.snapshot, rec.distance) == (
        "unknown_person",
        True,
        "s.jpg",
        0.81,
    )
    assert m.handle(FaceIdentified(ident.attempt, True, None, 0.8)) == []  # answered once


def test_known_face_or_no_face_raises_nothing(m: AccessController, clock: FakeClock) -> None:
    from appliance.core import FaceIdentified, IdentifyFace

    for answer in (dict(face_seen=True, user_id=101, distance=0.3), dict(face_seen=False)):
        clock.t += 100
        m.handle(MotionDetected())
        clock.t += 20
        ident = only(m.handle(Tick()), IdentifyFace)
        assert m.handle(FaceIdentified(ident.attempt, **answer)) == []


def test_typing_a_code_is_not_lingering(m: AccessController, clock: FakeClock) -> None:
    from appliance.core import FaceIdentified, IdentifyFace

    m.handle(MotionDetected())
    clock.t += 5
    type_keys(m, "1*")
    clock.t += 30
    assert not any(isinstance(c, IdentifyFace) for c in m.handle(Tick()))
    # and an identification already asked for is dropped when someone starts typing
    clock.t += 100
    m.handle(MotionDetected())
    clock.t += 20
    ident = only(m.handle(Tick()), IdentifyFace)
    type_keys(m, "2")
    assert m.handle(FaceIdentified(ident.attempt, True, None, 0.9)) == []


def test_lingering_check_can_be_switched_off(creds: FakeCredentials, clock: FakeClock) -> None:
    from appliance.core import IdentifyFace

    m = AccessController(Policy(unknown_person_after_s=0), creds, clock)
    m.handle(MotionDetected())
    clock.t += 60
    assert not any(isinstance(c, IdentifyFace) for c in m.handle(Tick()))


class BrokenStore:
    """A replica that cannot answer (SD-card I/O error, database locked)."""

    def check(self, user_number: int, pin: str) -> CodeCheck:
        raise OSError("disk I/O error")


def test_a_code_check_the_replica_cannot_answer_is_a_counted_refusal(clock: FakeClock) -> None:
    m = AccessController(Policy(), BrokenStore(), clock)  # type: ignore[arg-type]
    out = type_keys(m, "1*1234#")
    rec = records(out)
    assert [(r.kind, r.reason) for r in rec] == [("code_wrong", "check_failed")]
    assert not any(isinstance(c, Unlock) for c in out)
    assert m.budget().wrong_ages  # counted: a fault hands out no free guesses
    assert m.state is State.IDLE


def test_a_failing_handler_keeps_the_commands_its_deadlines_produced(clock: FakeClock) -> None:
    """The held-open alert falls due in the same handle() as an event whose handler fails:
    the alert is not lost with the error (it travels on HandleError), and is not sent again."""
    from appliance.core import HandleError

    m = AccessController(Policy(held_open_s=30.0, entry_grace_s=0.0), FakeCredentials(), clock)
    m.handle(DoorOpened())  # forced, and it stays open
    clock.advance(30.0)
    with pytest.raises(HandleError) as err:
        m.handle(KeyPressed("x"))  # not a key of the keypad: the handler raises
    assert isinstance(err.value.__cause__, ValueError)
    assert [r.kind for r in records(err.value.commands)] == ["held_open"]
    clock.advance(60.0)
    assert "held_open" not in [r.kind for r in records(m.handle(Tick()))]
