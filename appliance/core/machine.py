"""Owns the access state machine: keypad codes, lockout, duress, face step, relay, door watch."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from .events import (
    CAPTURE,
    CheckFace,
    Command,
    DoorbellPressed,
    DoorClosed,
    DoorOpened,
    Event,
    ExitPressed,
    FaceChecked,
    FaceIdentified,
    Feedback,
    FireAlarm,
    Hold,
    IdentifyFace,
    KeyPressed,
    Lock,
    MotionDetected,
    Record,
    RemoteUnlock,
    ScheduleChanged,
    SetLockdown,
    Signal,
    SleepCamera,
    TamperTriggered,
    Tick,
    Unlock,
    WakeCamera,
)

CODE_RE = re.compile(r"^(\d{1,9})\*(\d+)$")
KEYS = frozenset("0123456789*#ABCD")


class HandleError(Exception):
    """An event's handler failed. `commands`: what the same `handle` call had already
    decided (deadlines that fired first); the caller carries them out, then deals with the
    error (its __cause__)."""

    def __init__(self, commands: list[Command]) -> None:
        super().__init__(f"event handler failed after {len(commands)} command(s)")
        self.commands = commands


class Verdict(Enum):
    OK = "ok"
    DURESS = "duress"
    WRONG = "wrong"


@dataclass(frozen=True)
class CodeCheck:
    verdict: Verdict
    user_id: int | None = None
    admin: bool = False  # the user has the admin role (the only codes a lockdown lets in)


class Credentials(Protocol):
    """Port: checks a user number and PIN against the local replica (hashes, validity)."""

    def check(self, user_number: int, pin: str) -> CodeCheck: ...


@dataclass(frozen=True)
class GuestCheck:
    """The answer of the Guests port. `reason` says why a code is refused: wrong, used_up,
    expired, not_yet_valid, revoked, schedule, door, unconfirmed (see store.guests)."""

    ok: bool
    reason: str = "wrong"
    guest_id: int | None = None
    name: str = ""
    serial: int | None = None


class Guests(Protocol):
    """Port: guest codes. Typed as `0*<10 digits>#` (stored, hashed, use-counted) or
    `00*<10 digits>#` (offline: signed with the door's key, see core.offline)."""

    def check_code(self, digits: str) -> GuestCheck: ...

    def check_offline(self, digits: str) -> GuestCheck: ...


GUEST_PREFIX = "0"
OFFLINE_PREFIX = "00"


@dataclass(frozen=True)
class Policy:
    code_timeout_s: float = 10.0
    max_code_length: int = 22  # 9-digit number + "*" + 12-digit PIN (config.LONGEST_CODE)
    relay_pulse_s: float = 5.0
    wrong_code_limit: int = 5
    wrong_code_window_s: float = 600.0
    lockout_s: float = 300.0
    face_fail_limit: int = 3
    face_fail_window_s: float = 600.0
    face_timeout_s: float = 15.0
    held_open_s: float = 30.0
    entry_grace_s: float = 2.0
    exit_pulse_s: float = 5.0
    motion_wake_s: float = 30.0
    # someone seen by the PIR who types nothing for this long is identified 1:N (0 = never)
    unknown_person_after_s: float = 20.0
    # a doorbell press records a `doorbell` event (with its snapshot) at most this often;
    # with doorbell_alert it also queues an alert (to the channels that ask for doorbell)
    doorbell_repeat_s: float = 5.0
    doorbell_alert: bool = False
    # > 0: relock only once the door has been closed this long; the relay is never
    # re-energised (locked) while the door stands open. 0: relock when the pulse ends or the
    # door closes, whichever comes first.
    relock_after_close_s: float = 0.0
    # offline guest codes have their own, stricter budget on top of the wrong-code one:
    # offline_fail_limit codes with a wrong tag within offline_fail_window_s suspend offline
    # codes (not checked at all) for offline_lockout_s
    offline_fail_limit: int = 3
    offline_fail_window_s: float = 3600.0
    offline_lockout_s: float = 21600.0


@dataclass(frozen=True)
class Budget:
    """What an attacker has used of the brute-force budget: seconds since each wrong code and
    each face failure still inside its window, and the lockout time left."""

    wrong_ages: tuple[float, ...] = ()
    face_fail_ages: tuple[float, ...] = ()
    lockout_remaining: float = 0.0
    offline_fail_ages: tuple[float, ...] = ()
    offline_lockout_remaining: float = 0.0


class State(Enum):
    IDLE = "idle"
    ENTERING = "entering"
    CHECKING_FACE = "checking_face"
    LOCKED_OUT = "locked_out"


@dataclass
class _Pending:
    attempt: int
    user_id: int
    user_number: int
    duress: bool
    deadline: float
    admin: bool = False


class AccessController:
    """Pure decision logic: `handle(event)` returns the commands to carry out, in order.

    Time comes only from the injected clock (seconds, monotonic). Deadlines fire on any event,
    so the host feeds `Tick()` a few times a second.
    """

    def __init__(
        self,
        policy: Policy,
        credentials: Credentials,
        clock: Callable[[], float],
        guests: Guests | None = None,
    ) -> None:
        self.policy = policy
        self._credentials = credentials
        self._guests = guests
        self._clock = clock
        self._buffer = ""
        self._last_key_at = 0.0
        self._wrong: deque[float] = deque()
        self._face_fails: deque[float] = deque()
        self._lockout_until: float | None = None
        self._refused = 0  # codes (#) refused during the current lockout
        self.budget_changes = 0  # bumped whenever the brute-force budget changes
        self._pending: _Pending | None = None
        self._attempts = 0
        self._relay_until: float | None = None  # relay energised until (None = locked)
        self._grace_until = float("-inf")  # door may open without alarm until
        self._door_open = False
        self._door_opened_at = 0.0
        self._held_alerted = False
        self._awake_until = float("-inf")
        self._camera_awake = False
        self._loiter_check_at: float | None = None
        self._identify_attempt: int | None = None
        self._rang_at = float("-inf")
        # relay mode: "off" (locked), "pulse" (until _relay_until), "held" (until a Lock)
        self._mode = "off"
        self._held_reason = ""
        self._lockdown = False
        self._fire = False
        self._schedule_key: str | None = None
        self._schedule_fpi = False
        self._schedule_opened = False  # first person in happened for this window
        self._schedule_holding = False
        self._door_closed_at = float("-inf")
        self._relock_at: float | None = None  # auto-relock: closed since, relock at
        self._offline_fails: deque[float] = deque()
        self._offline_until: float | None = None

    # ---- read-only views ------------------------------------------------------------------
    @property
    def state(self) -> State:
        now = self._clock()
        if self._lockout_until is not None and now < self._lockout_until:
            return State.LOCKED_OUT
        if self._pending is not None:
            return State.CHECKING_FACE
        return State.ENTERING if self._buffer else State.IDLE

    @property
    def relay_on(self) -> bool:
        return self._mode != "off"

    @property
    def relay_held(self) -> bool:
        """Energised with no end of its own (the host renews its lease while this is true)."""
        return self._mode == "held"

    @property
    def held_reason(self) -> str:
        """fire, schedule or door_open (auto-relock waiting for the door); "" when not held."""
        return self._held_reason if self._mode == "held" else ""

    @property
    def lockdown(self) -> bool:
        return self._lockdown

    @property
    def fire_active(self) -> bool:
        return self._fire

    @property
    def schedule_window(self) -> str | None:
        return self._schedule_key

    @property
    def schedule_waiting_first_person(self) -> bool:
        return self._schedule_key is not None and self._schedule_fpi and not self._schedule_opened

    @property
    def offline_suspended_remaining(self) -> float:
        if self._offline_until is None:
            return 0.0
        return max(0.0, self._offline_until - self._clock())

    @property
    def door_open(self) -> bool:
        return self._door_open

    @property
    def lockout_remaining(self) -> float:
        if self._lockout_until is None:
            return 0.0
        return max(0.0, self._lockout_until - self._clock())

    @property
    def camera_awake(self) -> bool:
        return self._camera_awake

    @property
    def entered_length(self) -> int:
        return len(self._buffer)

    # ---- brute-force budget (persisted by the host across restarts) ---------------------------
    def budget(self) -> Budget:
        """The wrong-code and face-failure windows and the lockout, as ages/remaining seconds."""
        now = self._clock()
        return Budget(
            wrong_ages=tuple(now - t for t in self._wrong),
            face_fail_ages=tuple(now - t for t in self._face_fails),
            lockout_remaining=self.lockout_remaining,
            offline_fail_ages=tuple(now - t for t in self._offline_fails),
            offline_lockout_remaining=self.offline_suspended_remaining,
        )

    def restore_budget(self, budget: Budget) -> None:
        """Take over a budget saved by an earlier process (ages as measured now). Ages below
        zero count as now; a lockout never lasts longer than lockout_s from now."""
        now = self._clock()
        p = self.policy
        self._wrong = deque(
            sorted(now - max(0.0, a) for a in budget.wrong_ages if a < p.wrong_code_window_s)
        )
        self._face_fails = deque(
            sorted(now - max(0.0, a) for a in budget.face_fail_ages if a < p.face_fail_window_s)
        )
        remaining = min(budget.lockout_remaining, p.lockout_s)
        self._lockout_until = now + remaining if remaining > 0 else None
        self._refused = 0
        self._offline_fails = deque(
            sorted(
                now - max(0.0, a) for a in budget.offline_fail_ages if a < p.offline_fail_window_s
            )
        )
        off = min(budget.offline_lockout_remaining, p.offline_lockout_s)
        self._offline_until = now + off if off > 0 else None

    def restore_lockdown(self, on: bool) -> None:
        """Take over a lockdown stored by an earlier process (no new record or alert)."""
        self._lockdown = bool(on)

    # ---- the one entry point --------------------------------------------------------------
    def handle(self, event: Event) -> list[Command]:
        now = self._clock()
        out: list[Command] = []
        self._fire_deadlines(now, out)
        try:
            self._dispatch(event, now, out)
        except Exception as exc:
            # what the deadlines decided (a held-open alert, a face timeout's refusal) is
            # state already changed: its commands travel with the error, never lost with it
            raise HandleError(out) from exc
        self._relay_update(now, out)
        return out

    def _dispatch(self, event: Event, now: float, out: list[Command]) -> None:
        match event:
            case KeyPressed(key=key):
                self._on_key(key, now, out)
            case FaceChecked():
                self._on_face(event, now, out)
            case DoorOpened(at_start=at_start):
                self._on_door_opened(now, out, at_start=at_start)
            case DoorClosed():
                self._on_door_closed(now, out)
            case ExitPressed():
                self._on_exit(now, out)
            case TamperTriggered():
                out.append(Record("tamper", snapshot=CAPTURE, alert=True))
            case MotionDetected():
                if now >= self._awake_until:
                    out += [Signal(Feedback.WAKE), Record("motion")]
                    if self.policy.unknown_person_after_s > 0:
                        self._loiter_check_at = now + self.policy.unknown_person_after_s
                self._wake_camera(now, out)
            case FaceIdentified():
                self._on_identified(event, out)
            case RemoteUnlock():
                self._on_remote_unlock(event, now, out)
            case DoorbellPressed():
                self._wake_camera(now, out)  # the snapshot below reads a streaming camera
                if now - self._rang_at >= self.policy.doorbell_repeat_s:
                    self._rang_at = now
                    alert = self.policy.doorbell_alert
                    out.append(Record("doorbell", snapshot=CAPTURE, alert=alert))
            case FireAlarm(active=active):
                self._on_fire(active, out)
            case SetLockdown():
                self._on_lockdown(event, out)
            case ScheduleChanged():
                self._on_schedule(event, out)
            case Tick():
                pass
            case _:
                raise TypeError(f"unknown event {event!r}")

    # ---- deadlines ------------------------------------------------------------------------
    def _fire_deadlines(self, now: float, out: list[Command]) -> None:
        p = self.policy
        if self._mode == "pulse" and self._relay_until is not None and now >= self._relay_until:
            self._lock(now, out)
        if self._relock_at is not None and now >= self._relock_at and not self._door_open:
            self._relock_at = None
            self._relay_update(now, out)
        if self._offline_until is not None and now >= self._offline_until:
            self._offline_until = None
            self.budget_changes += 1
        if self._lockout_until is not None and now >= self._lockout_until:
            self._lockout_until = None
            # one event per lockout, with the count of codes refused during it
            out.append(Record("lockout_ended", detail={"refused": self._refused}))
            self._refused = 0
            self.budget_changes += 1
        if self._buffer and now - self._last_key_at >= p.code_timeout_s:
            self._buffer = ""
            out.append(Signal(Feedback.CLEARED))
        if self._pending is not None and now >= self._pending.deadline:
            pending, self._pending = self._pending, None
            self._face_denied(
                pending,
                FaceChecked(pending.attempt, False, None, "timeout"),
                now,
                out,
            )
        if self._loiter_check_at is not None and now >= self._loiter_check_at:
            self._loiter_check_at = None
            quiet = (
                not self._buffer
                and self._pending is None
                and self._lockout_until is None
                and self._mode == "off"
                and not self._door_open
            )
            if quiet:
                self._attempts += 1
                self._identify_attempt = self._attempts
                out.append(IdentifyFace(self._attempts))
        if (
            self._camera_awake
            and now >= self._awake_until
            and self._pending is None
            and not self._buffer
        ):
            self._camera_awake = False
            out.append(SleepCamera())
        if (
            self._door_open
            and not self._held_alerted
            and now - self._door_opened_at >= p.held_open_s
        ):
            self._held_alerted = True
            out.append(
                Record(
                    "held_open",
                    snapshot=CAPTURE,
                    alert=True,
                    detail={"open_s": round(now - self._door_opened_at, 1)},
                )
            )

    # ---- keypad ---------------------------------------------------------------------------
    def _on_key(self, key: str, now: float, out: list[Command]) -> None:
        if key not in KEYS:
            raise ValueError(f"unknown key {key!r}")
        if self._lockout_until is not None:
            if key == "#":
                self._refused += 1  # counted, not recorded per press (see lockout_ended)
            out.append(Signal(Feedback.LOCKED_OUT))
            return
        if self._pending is not None:
            return  # a face check is running; keys wait for its answer
        self._last_key_at = now
        self._loiter_check_at = None  # a person typing a code is not loitering
        self._identify_attempt = None
        self._wake_camera(now, out)
        if key in "ABCD":
            return
        if key == "*" and self._buffer.endswith("*"):
            self._buffer = ""  # "**" clears
            out.append(Signal(Feedback.CLEARED))
            return
        if key == "#":
            code, self._buffer = self._buffer, ""
            if code:
                self._submit(code, now, out)
            return
        if len(self._buffer) >= self.policy.max_code_length:
            self._buffer = ""
            out.append(Signal(Feedback.CLEARED))
            return
        self._buffer += key
        out.append(Signal(Feedback.KEY))

    def _submit(self, code: str, now: float, out: list[Command]) -> None:
        m = CODE_RE.match(code)
        if m is None:
            self._wrong_code(None, "malformed", now, out)
            return
        if m.group(1) in (GUEST_PREFIX, OFFLINE_PREFIX):
            self._submit_guest(m.group(1) == OFFLINE_PREFIX, m.group(2), now, out)
            return
        number = int(m.group(1))
        try:
            result = self._credentials.check(number, m.group(2))
        except Exception:  # the replica cannot answer (I/O error, locked): refused, and
            # counted, so that a fault cannot hand out guesses the budget does not see
            self._wrong_code(number, "check_failed", now, out)
            return
        if result.verdict is Verdict.WRONG or result.user_id is None:
            self._wrong_code(number, "wrong_code", now, out)
            return
        duress = result.verdict is Verdict.DURESS
        if self._lockdown and not result.admin:
            # a right code of a user without the admin role: refused with an alert, and not
            # counted as a wrong code (the budget is for guessing, this code was right)
            out.append(
                Record(
                    "lockdown_refused",
                    user_number=number,
                    user_id=result.user_id,
                    reason="lockdown",
                    snapshot=CAPTURE,
                    alert=True,
                )
            )
            out.append(Signal(Feedback.DENIED))
            if duress:  # silent, after the same feedback a normal code gets
                out.append(
                    Record(
                        "duress",
                        user_number=number,
                        user_id=result.user_id,
                        snapshot=CAPTURE,
                        alert=True,
                        detail={"lockdown": True},
                    )
                )
            return
        self._attempts += 1
        self._pending = _Pending(
            self._attempts,
            result.user_id,
            number,
            duress,
            now + self.policy.face_timeout_s,
            admin=result.admin,
        )
        out.append(Signal(Feedback.WORKING))
        self._wake_camera(now, out)
        if duress:
            # silent and off the feedback path: the person at the door sees exactly what a
            # normal entry looks like, at the same moment; the record, its snapshot and its
            # alert come after the feedback (and before the face check takes the camera)
            out.append(
                Record(
                    "duress",
                    user_number=number,
                    user_id=result.user_id,
                    snapshot=CAPTURE,
                    alert=True,
                )
            )
        out.append(CheckFace(self._attempts, result.user_id, number))

    def _submit_guest(self, offline: bool, digits: str, now: float, out: list[Command]) -> None:
        """A guest code: no face check (a guest has no enrolled face), always a snapshot and
        a `guest_entry` alert; refusals count as wrong codes."""
        p = self.policy
        if self._guests is None:
            self._wrong_code(None, "malformed", now, out)
            return
        if offline and self._offline_until is not None:
            self._wrong_code(None, "offline_suspended", now, out)  # not even checked
            return
        try:
            result = (
                self._guests.check_offline(digits) if offline else self._guests.check_code(digits)
            )
        except Exception:  # as for a user's code: refused and counted
            self._wrong_code(None, "check_failed", now, out)
            return
        if not result.ok:
            if offline and result.reason == "wrong":
                _trim(self._offline_fails, now - p.offline_fail_window_s)
                self._offline_fails.append(now)
                if len(self._offline_fails) >= p.offline_fail_limit:
                    count = len(self._offline_fails)
                    self._offline_fails.clear()
                    self._offline_until = now + p.offline_lockout_s
                    out.append(
                        Record(
                            "lockout",
                            reason="offline_codes",
                            snapshot=CAPTURE,
                            alert=True,
                            detail={"count": count, "lockout_s": p.offline_lockout_s},
                        )
                    )
            self._wrong_code(None, f"guest_{result.reason}", now, out)
            return
        detail: dict[str, object] = {"guest_id": result.guest_id, "name": result.name}
        if offline:
            detail["serial"] = result.serial
        if self._lockdown:
            out.append(
                Record(
                    "lockdown_refused",
                    reason="lockdown",
                    snapshot=CAPTURE,
                    alert=True,
                    detail=detail,
                )
            )
            out.append(Signal(Feedback.DENIED))
            return
        self._unlock(p.relay_pulse_s, now, out)  # open first, as for a user's grant
        out.append(
            Record("guest_entry", reason="offline" if offline else "guest_code",
                   snapshot=CAPTURE, alert=True, detail=detail)
        )  # fmt: skip
        out.append(Signal(Feedback.GRANTED))

    def _wrong_code(self, number: int | None, reason: str, now: float, out: list[Command]) -> None:
        p = self.policy
        _trim(self._wrong, now - p.wrong_code_window_s)
        self._wrong.append(now)
        self.budget_changes += 1
        out.append(Record("code_wrong", user_number=number, reason=reason))
        out.append(Signal(Feedback.DENIED))
        if len(self._wrong) >= p.wrong_code_limit:
            self._start_lockout(now, "wrong_codes", len(self._wrong), number, out)

    def _start_lockout(
        self, now: float, reason: str, count: int, number: int | None, out: list[Command]
    ) -> None:
        self._wrong.clear()
        self._face_fails.clear()
        self._buffer = ""
        self._lockout_until = now + self.policy.lockout_s
        self._refused = 0
        self.budget_changes += 1
        out.append(
            Record(
                "lockout",
                user_number=number,
                reason=reason,
                snapshot=CAPTURE,
                alert=True,
                detail={"count": count, "lockout_s": self.policy.lockout_s},
            )
        )
        out.append(Signal(Feedback.LOCKED_OUT))

    # ---- face -----------------------------------------------------------------------------
    def _on_face(self, result: FaceChecked, now: float, out: list[Command]) -> None:
        pending = self._pending
        if pending is None or result.attempt != pending.attempt:
            return  # a late answer to an attempt that already timed out
        self._pending = None
        if not result.matched:
            self._face_denied(pending, result, now, out)
            return
        if self._lockdown and not pending.admin:
            # the lockdown began while this face was being checked
            out.append(
                Record(
                    "lockdown_refused",
                    user_number=pending.user_number,
                    user_id=pending.user_id,
                    distance=result.distance,
                    reason="lockdown",
                    snapshot=result.snapshot or CAPTURE,
                    alert=True,
                )
            )
            out.append(Signal(Feedback.DENIED))
            return
        detail: dict[str, object] = {"duress": True} if pending.duress else {}
        if self._fire:
            detail["fire"] = True  # recorded; the relay is already released
        if self._schedule_key is not None and not self._lockdown:
            if self.schedule_waiting_first_person:
                detail["first_person_in"] = True
            self._schedule_opened = True  # first person in: the held unlock starts now
            self._relay_update(now, out)
        self._unlock(self.policy.relay_pulse_s, now, out)  # open first: the record can follow
        out.append(
            Record(
                "granted",
                user_number=pending.user_number,
                user_id=pending.user_id,
                distance=result.distance,
                reason=result.reason,
                snapshot=result.snapshot,
                detail=detail,
            )
        )
        out.append(Signal(Feedback.GRANTED))

    def _face_denied(
        self, pending: _Pending, result: FaceChecked, now: float, out: list[Command]
    ) -> None:
        kind = {
            "no_face": "denied_no_face",
            "timeout": "denied_no_face",
            "liveness_failed": "denied_liveness",
        }.get(result.reason, "denied_face")
        out.append(
            Record(
                kind,
                user_number=pending.user_number,
                user_id=pending.user_id,
                distance=result.distance,
                reason=result.reason,
                snapshot=result.snapshot or CAPTURE,
                alert=True,
            )
        )
        out.append(Signal(Feedback.DENIED))
        p = self.policy
        _trim(self._face_fails, now - p.face_fail_window_s)
        self._face_fails.append(now)
        self.budget_changes += 1
        if len(self._face_fails) >= p.face_fail_limit:
            self._start_lockout(
                now, "face_failures", len(self._face_fails), pending.user_number, out
            )

    def _on_identified(self, result: FaceIdentified, out: list[Command]) -> None:
        if result.attempt != self._identify_attempt:
            return  # a code was typed meanwhile, or an old answer
        self._identify_attempt = None
        if result.face_seen and result.user_id is None:
            out.append(
                Record(
                    "unknown_person",
                    distance=result.distance,
                    snapshot=result.snapshot or CAPTURE,
                    alert=True,
                )
            )

    def _wake_camera(self, now: float, out: list[Command]) -> None:
        """Keep the camera streaming for motion_wake_s from now (WakeCamera once per wake)."""
        self._awake_until = max(self._awake_until, now + self.policy.motion_wake_s)
        if not self._camera_awake:
            self._camera_awake = True
            out.append(WakeCamera())

    # ---- relay and door -------------------------------------------------------------------
    def _unlock(self, seconds: float, now: float, out: list[Command]) -> None:
        # Never extend a running pulse: the relay is on for at most one pulse at a time, and a
        # held relay (fire, schedule, open door) is not pulsed at all.
        if self._mode == "off":
            self._mode = "pulse"
            self._relay_until = now + seconds
            out.append(Unlock(seconds))

    def _lock(self, now: float, out: list[Command]) -> None:
        if self.policy.relock_after_close_s > 0 and self._door_open:
            # never re-energise (lock) while the door stands open: wait for it to close
            self._hold("door_open", out)
            return
        self._mode = "off"
        self._relay_until = None
        self._held_reason = ""
        self._grace_until = now + self.policy.entry_grace_s
        out.append(Lock())

    def _on_remote_unlock(self, event: RemoteUnlock, now: float, out: list[Command]) -> None:
        """A remote grant: the keypad grant's pulse, relay first, then its record (who, from
        where, a snapshot of who is at the door) and the granted feedback. Like a keypad
        grant, one while the relay is on records the grant and starts no second pulse."""
        detail = {"method": event.method, "by": event.by, "source": event.source}
        if self._lockdown:
            # the remote side checks first, but across threads and processes: a lockdown that
            # landed after its check (or is stored and not yet polled) still wins here
            out.append(
                Record(
                    "lockdown_refused", reason="remote", snapshot=CAPTURE, alert=True, detail=detail
                )  # fmt: skip
            )
            out.append(Signal(Feedback.DENIED))
            return
        if self._mode != "off":  # a pulse running, or the relay held (fire, schedule, door open)
            detail["pulse"] = "already_running" if self._mode == "pulse" else "held"
        self._unlock(self.policy.relay_pulse_s, now, out)
        out.append(Record("granted", reason="remote", snapshot=CAPTURE, detail=detail))
        out.append(Signal(Feedback.GRANTED))

    def _hold(self, reason: str, out: list[Command]) -> None:
        if self._mode != "held" or self._held_reason != reason:
            out.append(Hold(reason))
        self._mode = "held"
        self._relay_until = None
        self._held_reason = reason

    def _hold_reason_now(self, now: float) -> str | None:
        """Why the relay must be held right now, most important first (None: it need not)."""
        if self._fire:
            return "fire"
        if self._schedule_holding:
            return "schedule"
        r = self.policy.relock_after_close_s
        if r > 0 and self._mode != "off":
            if self._door_open:
                return "door_open"
            if self._relock_at is not None and now < self._relock_at:
                return "door_open"
        return None

    def _relay_update(self, now: float, out: list[Command]) -> None:
        """Bring the relay's mode in line with fire, lockdown, schedule and the door."""
        holding = (
            self._schedule_key is not None
            and not self._lockdown
            and (not self._schedule_fpi or self._schedule_opened)
        )
        note = None
        if holding != self._schedule_holding:
            self._schedule_holding = holding
            note = Record(
                "schedule_unlocked" if holding else "schedule_locked",
                reason=self._schedule_key if holding else None,
            )
        reason = self._hold_reason_now(now)
        if reason is not None:
            self._hold(reason, out)
        elif self._mode == "held":
            self._lock(now, out)
        if note is not None:
            out.append(note)

    def _on_exit(self, now: float, out: list[Command]) -> None:
        out.append(Record("exit"))
        self._unlock(self.policy.exit_pulse_s, now, out)

    def _on_door_opened(self, now: float, out: list[Command], *, at_start: bool = False) -> None:
        if self._door_open:
            return
        self._door_open = True
        self._door_opened_at = now  # at start: held open counts from now
        self._held_alerted = False
        self._relock_at = None
        if at_start:
            out.append(Record("door_opened", reason="open_at_start"))
        elif self._mode != "off" or now < self._grace_until:
            out.append(Record("door_opened"))
        else:
            out.append(Record("forced", snapshot=CAPTURE, alert=True))

    def _on_door_closed(self, now: float, out: list[Command]) -> None:
        if not self._door_open:
            return
        self._door_open = False
        self._door_closed_at = now
        out.append(Record("door_closed", detail={"open_s": round(now - self._door_opened_at, 1)}))
        r = self.policy.relock_after_close_s
        if r > 0:
            if self._mode != "off":
                self._relock_at = now + r  # relock once it has stayed closed this long
            return
        if self._mode == "pulse":
            self._lock(now, out)  # relock as soon as the door shuts behind the person
            self._grace_until = now  # a closed door that opens again needs a new grant

    # ---- emergency modes and the schedule ---------------------------------------------------
    def _on_fire(self, active: bool, out: list[Command]) -> None:
        if active == self._fire:
            return
        self._fire = active
        if active:
            out.append(Record("fire_alarm", reason="fire_input", snapshot=CAPTURE, alert=True))
        else:
            out.append(Record("fire_cleared", reason="fire_input", alert=True))

    def _on_lockdown(self, event: SetLockdown, out: list[Command]) -> None:
        if event.on == self._lockdown:
            return
        self._lockdown = event.on
        self._buffer = ""
        out.append(
            Record(
                "lockdown_on" if event.on else "lockdown_off",
                reason=event.source or None,
                alert=True,
                detail={"by": event.by, "source": event.source},
            )
        )

    def _on_schedule(self, event: ScheduleChanged, out: list[Command]) -> None:
        if event.window != self._schedule_key:
            self._schedule_opened = False  # a new window waits for its own first person
        self._schedule_key = event.window
        self._schedule_fpi = event.first_person_in if event.window is not None else False


def _trim(times: deque[float], before: float) -> None:
    while times and times[0] <= before:
        times.popleft()
