"""Hypothesis stateful test of the access state machine's safety invariants.

Invariants, checked after every step of random sequences of keys, codes, face answers, door
events and time:
1. the relay is never on longer than the pulse it was given, and no second pulse starts while
   it is on;
2. there is no grant without the right code for that user followed by a matching face;
3. a lockout holds for its full time: no code is checked and no face asked for until it ends.
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
    KeyPressed,
    Lock,
    MotionDetected,
    Policy,
    Record,
    TamperTriggered,
    Tick,
    Unlock,
    Verdict,
)

from .test_machine_rules import USERS, FakeCredentials

POLICY = Policy(relay_pulse_s=5.0, exit_pulse_s=3.0, lockout_s=300.0)


class DoorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.t = 0.0
        self.creds = FakeCredentials()
        self.m = AccessController(POLICY, self.creds, lambda: self.t)
        self.relay_on_since: float | None = None
        self.relay_seconds = 0.0
        self.attempts: dict[int, int] = {}  # attempt -> user_id whose right code was typed
        self.open_attempt: int | None = None
        self.lockout_until: float | None = None

    # ---- driving ---------------------------------------------------------------------------
    def send(self, event: object) -> list:
        checks_before = len(self.creds.checks)
        out = self.m.handle(event)
        new_checks = self.creds.checks[checks_before:]
        in_lockout = self.lockout_until is not None and self.t < self.lockout_until
        for cmd in out:
            if isinstance(cmd, Unlock):
                assert self.relay_on_since is None, "a second pulse started while the relay was on"
                assert cmd.seconds in (POLICY.relay_pulse_s, POLICY.exit_pulse_s)
                self.relay_on_since, self.relay_seconds = self.t, cmd.seconds
            elif isinstance(cmd, Lock):
                self.relay_on_since = None
            elif isinstance(cmd, CheckFace):
                assert not in_lockout, "face check asked for during a lockout"
                # the code that led here was checked in this very step and was right
                assert new_checks, "face check without a code check"
                number, pin = new_checks[-1]
                verdict = self.creds.check(number, pin).verdict
                self.creds.checks.pop()
                assert verdict in (Verdict.OK, Verdict.DURESS)
                assert USERS[number][2] == cmd.user_id
                self.attempts[cmd.attempt] = cmd.user_id
                self.open_attempt = cmd.attempt
            elif isinstance(cmd, Record):
                if cmd.kind == "granted":
                    assert isinstance(event, FaceChecked) and event.matched, "grant without face"
                    assert self.attempts.get(event.attempt) == cmd.user_id
                    assert not in_lockout
                elif cmd.kind == "lockout":
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
        return out

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

    # ---- invariants ------------------------------------------------------------------------
    @invariant()
    def relay_never_on_longer_than_its_pulse(self) -> None:
        assert self.m.relay_on == (self.relay_on_since is not None)
        if self.relay_on_since is not None:
            assert self.t - self.relay_on_since < self.relay_seconds

    @invariant()
    def lockout_state_matches(self) -> None:
        if self.lockout_until is not None and self.t < self.lockout_until:
            assert self.m.state.value == "locked_out"


DoorMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestDoorMachine = DoorMachine.TestCase
