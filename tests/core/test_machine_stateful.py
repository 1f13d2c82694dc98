"""Hypothesis stateful test of the access state machine's safety invariants.

Invariants, checked after every step of random sequences of keys, codes, guest and offline
codes, face answers, door events, fire alarm, lockdown, schedule windows and time:
1. the relay is never on longer than the pulse it was given, and no second pulse starts while
   it is on;
2. there is no grant without the right code for that user followed by a matching face;
3. a lockout holds for its full time: no code is checked and no face asked for until it ends;
4. the relay is never on outside a pulse, a fire alarm, or a schedule window whose first
   person (when it asks for one) has been granted; with auto-relock, also while the door
   stands open or has been closed for less than relock_after_close_s after that;
5. during a lockdown no user without the admin role and no guest is let in.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from appliance.core import (
    AccessController,
    CheckFace,
    DoorClosed,
    DoorOpened,
    ExitPressed,
    FaceChecked,
    FireAlarm,
    Hold,
    KeyPressed,
    Lock,
    MotionDetected,
    Policy,
    Record,
    ScheduleChanged,
    SetLockdown,
    TamperTriggered,
    Tick,
    Unlock,
    Verdict,
)

from .test_machine_rules import USERS
from .test_policies import ADMIN, Creds, FakeGuests

POLICY = Policy(relay_pulse_s=5.0, exit_pulse_s=3.0, lockout_s=300.0)
GOOD_GUEST = "1234567890"


class DoorMachine(RuleBasedStateMachine):
    policy = POLICY

    def __init__(self) -> None:
        super().__init__()
        self.t = 0.0
        self.creds = Creds()
        self.guests = FakeGuests(uses=3)
        self.m = AccessController(self.policy, self.creds, lambda: self.t, guests=self.guests)
        self.relay_on_since: float | None = None
        self.relay_seconds = 0.0
        self.held = False
        self.attempts: dict[int, int] = {}  # attempt -> user_id whose right code was typed
        self.admins: set[int] = set()  # attempts of admin-role users
        self.open_attempt: int | None = None
        self.lockout_until: float | None = None
        self.fire = False
        self.lockdown = False
        self.window: str | None = None
        self.fpi = False
        self.first_in = False  # a user was granted in the current window
        self.door_open = False
        self.closed_at = float("-inf")
        self.relay_on_at_open = False  # the relay was legitimately on when the door opened

    # ---- driving ---------------------------------------------------------------------------
    guest_ok = False

    def send(self, event: object) -> list:
        checks_before = len(self.creds.checks)
        self._model_before(event)
        out = self.m.handle(event)
        new_checks = self.creds.checks[checks_before:]
        in_lockout = self.lockout_until is not None and self.t < self.lockout_until
        for cmd in out:
            if isinstance(cmd, Unlock):
                assert self.relay_on_since is None, "a second pulse started while the relay was on"
                assert not self.held, "a pulse started while the relay was held"
                assert cmd.seconds in (self.policy.relay_pulse_s, self.policy.exit_pulse_s)
                self.relay_on_since, self.relay_seconds = self.t, cmd.seconds
            elif isinstance(cmd, Hold):
                self.relay_on_since = None
                self.held = True
            elif isinstance(cmd, Lock):
                self.relay_on_since = None
                self.held = False
            elif isinstance(cmd, CheckFace):
                assert not in_lockout, "face check asked for during a lockout"
                # the code that led here was checked in this very step and was right
                assert new_checks, "face check without a code check"
                number, pin = new_checks[-1]
                verdict = self.creds.check(number, pin).verdict
                self.creds.checks.pop()
                assert verdict in (Verdict.OK, Verdict.DURESS)
                assert number == ADMIN or USERS[number][2] == cmd.user_id
                assert not self.lockdown or number == ADMIN, "face check for a non-admin"
                self.attempts[cmd.attempt] = cmd.user_id
                if number == ADMIN:
                    self.admins.add(cmd.attempt)
                self.open_attempt = cmd.attempt
            elif isinstance(cmd, Record):
                if cmd.kind == "granted":
                    assert isinstance(event, FaceChecked) and event.matched, "grant without face"
                    assert self.attempts.get(event.attempt) == cmd.user_id
                    assert not in_lockout
                    assert not self.lockdown or event.attempt in self.admins
                    if self.window is not None and not self.lockdown:
                        self.first_in = True
                elif cmd.kind == "guest_entry":
                    assert not self.lockdown and not in_lockout
                    assert self.guest_ok, "guest entry without an accepted guest code"
                elif cmd.kind == "lockout" and cmd.reason != "offline_codes":
                    self.lockout_until = self.t + POLICY.lockout_s
                elif cmd.kind == "lockout_ended":
                    assert self.lockout_until is not None and self.t >= self.lockout_until
        if in_lockout:
            assert not new_checks, "a code was checked during a lockout"
        answered = isinstance(event, FaceChecked) or any(
            isinstance(r, Record) and r.kind.startswith("denied") for r in out
        )
        if answered and self.m.state.value != "checking_face":
            self.open_attempt = None
        self._model_after(event)
        return out

    def _model_before(self, event: object) -> None:
        if isinstance(event, FireAlarm):
            self.fire = event.active
        elif isinstance(event, SetLockdown):
            self.lockdown = event.on
        elif isinstance(event, ScheduleChanged):
            if event.window != self.window:
                self.first_in = False
            self.window = event.window
            self.fpi = event.first_person_in if event.window is not None else False
        elif isinstance(event, DoorOpened) and not self.door_open:
            self.relay_on_at_open = self.relay_on_since is not None or self.held

    def _model_after(self, event: object) -> None:
        if isinstance(event, DoorOpened):
            self.door_open = True
        elif isinstance(event, DoorClosed) and self.door_open:
            self.door_open = False
            self.closed_at = self.t

    def _legitimately_held(self) -> bool:
        if self.fire:
            return True
        if self.window is not None and not self.lockdown and (not self.fpi or self.first_in):
            return True
        r = self.policy.relock_after_close_s
        return r > 0 and (self.door_open or self.t - self.closed_at < r)

    @rule(key=st.sampled_from("0123456789*#A"))
    def key(self, key: str) -> None:
        self.send(KeyPressed(key))

    @rule(
        number=st.sampled_from([1, 2, 3]),
        pin=st.sampled_from(["1234", "5678", "9999", "0000"]),
    )
    def code(self, number: int, pin: str) -> None:
        for k in f"{number}*{pin}#":
            self.send(KeyPressed(k))

    @precondition(lambda self: self.open_attempt is not None)
    @rule(matched=st.booleans(), distance=st.floats(0.1, 1.0))
    def face_answer(self, matched: bool, distance: float) -> None:
        attempt = self.open_attempt
        self.send(FaceChecked(attempt, matched, distance, "match" if matched else "mismatch"))

    @rule(attempt=st.integers(0, 5), matched=st.booleans())
    def stray_face_answer(self, attempt: int, matched: bool) -> None:
        if attempt == self.open_attempt:
            return
        out = self.send(FaceChecked(attempt, matched, 0.2, "match"))
        assert not any(isinstance(c, Record) and c.kind == "granted" for c in out)

    @rule(dt=st.floats(0.01, 400.0))
    def wait(self, dt: float) -> None:
        self.t += dt
        self.send(Tick())

    @precondition(lambda self: self.lockout_until is not None and self.t < self.lockout_until)
    @rule(before=st.floats(0.001, 2.0))
    def to_the_end_of_the_lockout(self, before: float) -> None:
        self.t = max(self.t, self.lockout_until - before)
        self.send(Tick())

    @rule(
        event=st.sampled_from(
            [DoorOpened(), DoorClosed(), ExitPressed(), TamperTriggered(), MotionDetected()]
        )
    )
    def other(self, event: object) -> None:
        self.send(event)

    @rule(pin=st.sampled_from(["4321", "1111"]))
    def admin_code(self, pin: str) -> None:
        for k in f"{ADMIN}*{pin}#":
            self.send(KeyPressed(k))

    @rule(digits=st.sampled_from([GOOD_GUEST, "1111111111"]), offline=st.booleans())
    def guest_code(self, digits: str, offline: bool) -> None:
        from appliance.core import offline as oc

        g = self.guests
        if offline and digits == GOOD_GUEST:
            digits = oc.issue(g.key, 3, g.today, g.today, g.today)
        # what the port will answer (it is asked at most once, at the final '#')
        self.guest_ok = (digits == GOOD_GUEST and g.uses > 0) or (
            offline and oc.verify(g.key, digits, g.today).reason == "ok"
        )
        prefix = "00" if offline else "0"
        for k in f"{prefix}*{digits}#":
            self.send(KeyPressed(k))
        self.guest_ok = False

    @rule(active=st.booleans())
    def fire_alarm(self, active: bool) -> None:
        self.send(FireAlarm(active))

    @rule(on=st.booleans())
    def set_lockdown(self, on: bool) -> None:
        self.send(SetLockdown(on, by="test", source="test"))

    @rule(window=st.sampled_from([None, "1@d1", "1@d2", "2@d1"]), fpi=st.booleans())
    def schedule(self, window: str | None, fpi: bool) -> None:
        self.send(ScheduleChanged(window, first_person_in=fpi))

    # ---- invariants ------------------------------------------------------------------------
    @invariant()
    def relay_never_on_longer_than_its_pulse(self) -> None:
        assert self.m.relay_on == (self.relay_on_since is not None or self.held)
        if self.relay_on_since is not None:
            assert self.t - self.relay_on_since < self.relay_seconds

    @invariant()
    def relay_never_on_outside_a_pulse_a_window_or_a_fire(self) -> None:
        if self.held:
            assert self._legitimately_held(), (
                f"held without reason: fire={self.fire} window={self.window} fpi={self.fpi} "
                f"first_in={self.first_in} lockdown={self.lockdown} door_open={self.door_open}"
            )
        # and the other way round: a fire or an open window always holds it
        if self.fire:
            assert self.held
        if self.window is not None and not self.lockdown and (not self.fpi or self.first_in):
            assert self.held

    @invariant()
    def lockout_state_matches(self) -> None:
        if self.lockout_until is not None and self.t < self.lockout_until:
            assert self.m.state.value == "locked_out"


DoorMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=60,
    deadline=None,
)
TestDoorMachine = DoorMachine.TestCase


class AutoRelockDoorMachine(DoorMachine):
    """The same invariants with auto-relock on close (relock_after_close_s = 2)."""

    policy = Policy(relay_pulse_s=5.0, exit_pulse_s=3.0, lockout_s=300.0, relock_after_close_s=2.0)

    @invariant()
    def never_relocked_while_the_door_is_open(self) -> None:
        if self.door_open and self.relay_on_at_open:
            assert self.m.relay_on, "the lock was re-energised with the door open"


AutoRelockDoorMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=60, deadline=None
)
TestAutoRelockDoorMachine = AutoRelockDoorMachine.TestCase
