"""Owns the vocabulary of the access state machine: input events and output commands."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .kinds import EventKind

# ---- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPressed:
    key: str  # one of 0-9 * # A-D


@dataclass(frozen=True)
class MotionDetected:
    pass


@dataclass(frozen=True)
class DoorOpened:
    """The contact went open; `at_start`: it already read open when the door started (after a
    power cut or a restart): how it came open is unknown, so it is not taken for forced."""

    at_start: bool = False


@dataclass(frozen=True)
class DoorClosed:
    pass


@dataclass(frozen=True)
class ExitPressed:
    pass


@dataclass(frozen=True)
class TamperTriggered:
    pass


@dataclass(frozen=True)
class FaceChecked:
    """The answer to a CheckFace command."""

    attempt: int
    matched: bool
    distance: float | None
    reason: str  # "match" | "mismatch" | "no_face" | "liveness_failed" | "poor_quality" | ...
    snapshot: str | None = None  # reference to the saved frame, passed through to events


@dataclass(frozen=True)
class FaceIdentified:
    """The answer to IdentifyFace: was there a face, and did it belong to anyone enrolled?"""

    attempt: int
    face_seen: bool
    user_id: int | None = None
    distance: float | None = None
    snapshot: str | None = None


@dataclass(frozen=True)
class DoorbellPressed:
    """The doorbell push-button (an input of its own, not a keypad key)."""


@dataclass(frozen=True)
class RemoteUnlock:
    """An unlock asked for from outside the door (MQTT, SMS) whose one-time code the remote
    layer has already checked. The machine gives it the same pulse as a keypad grant.

    by: who asked (integration name, owner number); source: from where ("mqtt", "sms:+44...").
    """

    by: str
    source: str
    method: str  # "mqtt" | "sms"


@dataclass(frozen=True)
class FireAlarm:
    """The fire-alarm input changed: while `active`, the lock is released for egress."""

    active: bool


@dataclass(frozen=True)
class SetLockdown:
    """Lockdown on or off (admin page, CLI, remote commands): every code is refused except
    those of users with the admin role; the exit button and the fire input still work."""

    on: bool
    by: str = ""
    source: str = ""


@dataclass(frozen=True)
class ScheduleChanged:
    """The door's unlock schedule entered a window (`window`, unique per window and day) or
    left it (None). With `first_person_in`, the held unlock waits for the first user grant."""

    window: str | None
    first_person_in: bool = False


@dataclass(frozen=True)
class Tick:
    """Time passes; the machine fires any deadline that is due."""


Event = (
    KeyPressed
    | MotionDetected
    | DoorOpened
    | DoorClosed
    | ExitPressed
    | TamperTriggered
    | FaceChecked
    | FaceIdentified
    | DoorbellPressed
    | RemoteUnlock
    | FireAlarm
    | SetLockdown
    | ScheduleChanged
    | Tick
)

# ---- outputs --------------------------------------------------------------------------------


class Feedback(Enum):
    KEY = "key"  # short click per key
    CLEARED = "cleared"
    WORKING = "working"  # code accepted, checking face
    GRANTED = "granted"
    DENIED = "denied"
    LOCKED_OUT = "locked_out"
    WAKE = "wake"


@dataclass(frozen=True)
class Unlock:
    """Energise (or de-energise, per wiring) the lock relay for exactly `seconds`."""

    seconds: float


@dataclass(frozen=True)
class Lock:
    pass


@dataclass(frozen=True)
class Hold:
    """Keep the relay energised with no end of its own (fire release, a schedule's held unlock,
    an open door waiting to be closed before relocking) until a `Lock`. The host keeps it on a
    short renewable lease, so the relay still locks by itself if the loop stops renewing it."""

    reason: str


@dataclass(frozen=True)
class CheckFace:
    """Capture frames and compare them with `user_id`'s templates; answer with FaceChecked."""

    attempt: int
    user_id: int
    user_number: int
    liveness: bool | None = None


@dataclass(frozen=True)
class IdentifyFace:
    """Someone lingers at the door without a code: who is it (1:N over every template)?"""

    attempt: int


@dataclass(frozen=True)
class WakeCamera:
    """Start streaming, so that a fresh frame is ready when the code is entered."""


@dataclass(frozen=True)
class SleepCamera:
    """Nobody has been at the door for a while: the camera may stop streaming."""


@dataclass(frozen=True)
class Signal:
    feedback: Feedback


@dataclass(frozen=True)
class Record:
    """Record an access event; with `alert` also queue an alert in the same transaction.

    `snapshot`: a saved frame reference (from FaceChecked), or "capture" to grab one now.
    """

    kind: str
    user_number: int | None = None
    user_id: int | None = None
    distance: float | None = None
    reason: str | None = None
    snapshot: str | None = None
    alert: bool = False
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        EventKind(self.kind)  # ValueError for a kind outside the vocabulary (a typo)

    @property
    def urgent(self) -> bool:
        """Never grouped or rate-limited, sent first (appliance.core.kinds)."""
        return EventKind(self.kind).urgent


Command = (
    Unlock | Lock | Hold | CheckFace | IdentifyFace | WakeCamera | SleepCamera | Signal | Record
)

CAPTURE = "capture"


@dataclass(frozen=True)
class ServiceRecord:
    """Not a state-machine input: a Record the door service itself writes on its loop thread
    (heartbeat, device lost or restored), posted there by the health worker."""

    record: Record
