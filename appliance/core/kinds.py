"""The one vocabulary of event kinds, with what every layer needs to know about each.

A kind is a StrEnum member, so it is stored, compared and hashed as its plain string
("forced" == EventKind.FORCED); every other layer derives its sets from the properties here:

- alerted   an alert may be configured for it (config [alerts] kinds)
- urgent    never grouped, never rate-limited, sent first (duress, forced, tamper)
- groupable one burst of these is one intrusion incident (wrong codes, refused faces...)
- batched   informational: held in memory and committed in batches (SD-card wear)
- heading   the human heading of its alert
- opt_in    alerted only to a channel or recipient whose `kinds` names it (the doorbell: a
            channel that takes "every kind" does not start texting at each ring)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class _Traits:
    title: str
    alerted: bool = False
    urgent: bool = False
    groupable: bool = False
    batched: bool = False
    opt_in: bool = False


class EventKind(StrEnum):
    GRANTED = "granted"
    CODE_WRONG = "code_wrong"
    DENIED_FACE = "denied_face"
    DENIED_NO_FACE = "denied_no_face"
    DENIED_LIVENESS = "denied_liveness"
    LOCKOUT = "lockout"
    LOCKOUT_ENDED = "lockout_ended"
    DURESS = "duress"
    FORCED = "forced"
    HELD_OPEN = "held_open"
    TAMPER = "tamper"
    UNKNOWN_PERSON = "unknown_person"
    MOTION = "motion"
    DOOR_OPENED = "door_opened"
    DOOR_CLOSED = "door_closed"
    EXIT = "exit"
    HEARTBEAT = "heartbeat"
    CAMERA_LOST = "camera_lost"
    CAMERA_RESTORED = "camera_restored"
    MODEM_LOST = "modem_lost"
    MODEM_RESTORED = "modem_restored"
    STORAGE_FAILED = "storage_failed"
    LOW_DISK_SPACE = "low_disk_space"
    TEST = "test"
    DOORBELL = "doorbell"
    SNAPSHOT = "snapshot"
    REMOTE_COMMAND = "remote_command"
    REMOTE_REFUSED = "remote_refused"
    # access policies (issue 17): guest codes, lockdown, fire release, schedules
    GUEST_ENTRY = "guest_entry"
    LOCKDOWN_ON = "lockdown_on"
    LOCKDOWN_OFF = "lockdown_off"
    LOCKDOWN_REFUSED = "lockdown_refused"
    FIRE_ALARM = "fire_alarm"
    FIRE_CLEARED = "fire_cleared"
    SCHEDULE_UNLOCKED = "schedule_unlocked"
    SCHEDULE_LOCKED = "schedule_locked"

    @property
    def traits(self) -> _Traits:
        return _TRAITS[self]

    @property
    def heading(self) -> str:
        return self.traits.title

    @property
    def alerted(self) -> bool:
        return self.traits.alerted

    @property
    def urgent(self) -> bool:
        return self.traits.urgent

    @property
    def groupable(self) -> bool:
        return self.traits.groupable

    @property
    def batched(self) -> bool:
        return self.traits.batched

    @property
    def opt_in(self) -> bool:
        return self.traits.opt_in

    @classmethod
    def where(cls, trait: str) -> frozenset[EventKind]:
        """Every kind with `trait` set (alerted, urgent, groupable, batched or opt_in)."""
        return frozenset(k for k in cls if getattr(k.traits, trait))


K = EventKind
_TRAITS: dict[EventKind, _Traits] = {
    K.GRANTED: _Traits("Access granted"),
    K.CODE_WRONG: _Traits("Wrong code"),
    K.DENIED_FACE: _Traits("Face mismatch", alerted=True, groupable=True),
    K.DENIED_NO_FACE: _Traits("No face seen", alerted=True, groupable=True),
    K.DENIED_LIVENESS: _Traits("Liveness check failed", alerted=True, groupable=True),
    K.LOCKOUT: _Traits("Keypad locked out after wrong codes", alerted=True, groupable=True),
    K.LOCKOUT_ENDED: _Traits("Lockout ended", batched=True),
    K.DURESS: _Traits("DURESS code used", alerted=True, urgent=True),
    K.FORCED: _Traits("Door forced open", alerted=True, urgent=True),
    K.HELD_OPEN: _Traits("Door held open", alerted=True),
    K.TAMPER: _Traits("Tamper switch triggered", alerted=True, urgent=True),
    K.UNKNOWN_PERSON: _Traits("Unknown person at the door", alerted=True, groupable=True),
    K.MOTION: _Traits("Motion", batched=True),
    K.DOOR_OPENED: _Traits("Door opened", batched=True),
    K.DOOR_CLOSED: _Traits("Door closed", batched=True),
    K.EXIT: _Traits("Exit button", batched=True),
    K.HEARTBEAT: _Traits("Heartbeat", batched=True),
    K.CAMERA_LOST: _Traits("Camera not delivering frames", alerted=True),
    K.CAMERA_RESTORED: _Traits("Camera restored", batched=True),
    K.MODEM_LOST: _Traits("GSM modem not answering", alerted=True),
    K.MODEM_RESTORED: _Traits("GSM modem restored", batched=True),
    K.STORAGE_FAILED: _Traits("Door storage failing: events held in memory", alerted=True),
    K.LOW_DISK_SPACE: _Traits("Door storage nearly full", alerted=True),
    K.TEST: _Traits("Test message", alerted=True),
    # a ring at the door, with its snapshot; by alert only where a channel asks for it
    K.DOORBELL: _Traits("Doorbell", alerted=True, opt_in=True),
    # a photo taken on request (MQTT, SMS); the audit of every remote command, and of the
    # refused ones (who, from where, why): decisions, so committed at once, never batched
    K.SNAPSHOT: _Traits("Snapshot taken on request"),
    K.REMOTE_COMMAND: _Traits("Remote command"),
    K.REMOTE_REFUSED: _Traits("Remote command refused"),
    K.GUEST_ENTRY: _Traits("Guest code used", alerted=True),
    K.LOCKDOWN_ON: _Traits("Lockdown started", alerted=True, urgent=True),
    K.LOCKDOWN_OFF: _Traits("Lockdown ended", alerted=True),
    K.LOCKDOWN_REFUSED: _Traits("Code refused during lockdown", alerted=True, groupable=True),
    K.FIRE_ALARM: _Traits("Fire alarm: lock released", alerted=True, urgent=True),
    K.FIRE_CLEARED: _Traits("Fire alarm cleared: door relocks", alerted=True),
    K.SCHEDULE_UNLOCKED: _Traits("Schedule: door held unlocked"),
    K.SCHEDULE_LOCKED: _Traits("Schedule: door locked again"),
}
del K
