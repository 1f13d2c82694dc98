"""The state machine's two inputs from issue #16: a remote unlock and the doorbell."""

from __future__ import annotations

from appliance.core import (
    CAPTURE,
    AccessController,
    CodeCheck,
    DoorbellPressed,
    DoorOpened,
    Feedback,
    Lock,
    Policy,
    Record,
    RemoteUnlock,
    SetLockdown,
    Signal,
    Tick,
    Unlock,
    Verdict,
    WakeCamera,
)
from tests.support.waiting import FakeClock


class NoCodes:
    def check(self, user_number: int, pin: str) -> CodeCheck:
        return CodeCheck(Verdict.WRONG)


def machine(clock: FakeClock, **policy: float | bool) -> AccessController:
    return AccessController(Policy(**policy), NoCodes(), clock)  # type: ignore[arg-type]


def test_a_remote_unlock_is_one_keypad_length_pulse_relay_first_then_its_record() -> None:
    clock = FakeClock()
    m = machine(clock, relay_pulse_s=4.0)
    out = m.handle(RemoteUnlock(by="home-assistant", source="mqtt", method="mqtt"))
    assert out[0] == Unlock(4.0)  # the relay before anything that writes
    rec = out[1]
    assert isinstance(rec, Record) and rec.kind == "granted" and rec.reason == "remote"
    assert rec.detail == {"method": "mqtt", "by": "home-assistant", "source": "mqtt"}
    assert rec.snapshot == CAPTURE and not rec.alert
    assert out[2] == Signal(Feedback.GRANTED)
    clock.advance(3.9)
    assert Lock() not in m.handle(Tick())
    clock.advance(0.1)
    assert Lock() in m.handle(Tick())


def test_a_remote_unlock_that_arrives_in_lockdown_is_refused_by_the_machine_itself() -> None:
    """The remote side refuses in lockdown too, but it reads the lockdown from another
    thread (or process): one set after its check must still keep the relay locked."""
    m = machine(FakeClock())
    m.handle(SetLockdown(True, by="admin", source="web"))
    out = m.handle(RemoteUnlock(by="home-assistant", source="mqtt", method="mqtt"))
    assert not any(isinstance(c, Unlock) for c in out)
    rec = next(c for c in out if isinstance(c, Record))
    assert rec.kind == "lockdown_refused" and rec.reason == "remote" and rec.alert
    assert rec.detail == {"method": "mqtt", "by": "home-assistant", "source": "mqtt"}
    assert Signal(Feedback.DENIED) in out
    m.handle(SetLockdown(False, by="admin", source="web"))
    assert Unlock(Policy().relay_pulse_s) in m.handle(RemoteUnlock("a", "mqtt", "mqtt"))


def test_a_second_remote_unlock_during_the_pulse_neither_extends_nor_repeats_it() -> None:
    clock = FakeClock()
    m = machine(clock, relay_pulse_s=5.0)
    m.handle(RemoteUnlock("a", "mqtt", "mqtt"))
    clock.advance(3.0)
    out = m.handle(RemoteUnlock("b", "sms:+4470", "sms"))
    assert not any(isinstance(c, Unlock) for c in out)
    assert out[0].detail["pulse"] == "already_running"  # type: ignore[union-attr]
    clock.advance(2.0)
    assert Lock() in m.handle(Tick())  # ends 5 s after the first, not the second


def test_the_door_opening_during_a_remote_pulse_is_not_forced() -> None:
    clock = FakeClock()
    m = machine(clock)
    m.handle(RemoteUnlock("a", "mqtt", "mqtt"))
    out = m.handle(DoorOpened())
    assert [c.kind for c in out if isinstance(c, Record)] == ["door_opened"]


def test_a_doorbell_press_wakes_the_camera_and_records_a_snapshot_at_most_every_repeat_s() -> None:
    clock = FakeClock()
    m = machine(clock, doorbell_repeat_s=5.0)
    out = m.handle(DoorbellPressed())
    assert out[0] == WakeCamera()
    assert out[1] == Record("doorbell", snapshot=CAPTURE, alert=False)
    clock.advance(4.9)
    assert not [c for c in m.handle(DoorbellPressed()) if isinstance(c, Record)]
    clock.advance(0.1)
    assert [c.kind for c in m.handle(DoorbellPressed()) if isinstance(c, Record)] == ["doorbell"]


def test_a_doorbell_alert_only_when_the_policy_asks_for_it() -> None:
    m = machine(FakeClock(), doorbell_alert=True)
    recs = [c for c in m.handle(DoorbellPressed()) if isinstance(c, Record)]
    assert recs[0].alert and not recs[0].urgent
