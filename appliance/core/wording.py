"""Owns the plain words for what the door did: one line per event, states and durations.

The terminal (`doorward run` on simulated hardware) and the admin page say the same thing
in the same words: `GRANTED  Kit Harington (1)`, `DENIED  face does not match user 1`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .kinds import EventKind

# what a face check's or a code's `reason` means, as a person would say it
_REASONS = {
    "mismatch": "face does not match",
    "no_face": "no face seen",
    "timeout": "no face seen in time",
    "liveness_failed": "no blink seen (liveness)",
    "poor_quality": "face too small or blurred",
    "wrong_code": "wrong code",
    "malformed": "not a code (<user number>*<PIN>#)",
    "wrong_codes": "too many wrong codes",
    "face_failures": "too many failed face checks",
}

# the door controller's states, as the admin page shows them
STATES = {
    "idle": "Ready",
    "entering": "Code being typed",
    "checking_face": "Checking face",
    "locked_out": "Keypad locked out",
    "unlocked": "Unlocked",
    "locked": "Locked",
}


def state_words(state: str | None) -> str:
    if not state:
        return "Unknown"
    return STATES.get(state, state.replace("_", " ").capitalize())


def duration(seconds: float | None) -> str:
    """172.1 -> '2 min 52 s'; 5.0 -> '5 s'; 7300 -> '2 h 2 min'; 90000 -> '1 day 1 h'."""
    if seconds is None:
        return "-"
    s = max(0, round(float(seconds)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    days = f"{d} day" + ("s" if d != 1 else "")
    return f"{days} {h} h" if h else days


def person(number: int | None, name: str | None) -> str:
    """'Kit Harington (1)', 'user 7' when the name is unknown, '' with no number."""
    if number is None:
        return ""
    return f"{name} ({number})" if name else f"user {number}"


def reason_words(reason: str | None) -> str:
    if not reason:
        return ""
    return _REASONS.get(reason, reason.replace("_", " "))


def outcome_line(
    kind: str,
    *,
    number: int | None = None,
    name: str | None = None,
    reason: str | None = None,
    alerted: bool = False,
    detail: Mapping[str, Any] | None = None,
) -> str | None:
    """One plain line for a decision or an alert; None for informational events (motion...)."""
    who = person(number, name)
    queued = " - alert queued" if alerted else ""
    detail = detail or {}
    if kind == EventKind.GRANTED:
        return f"GRANTED  {who}".rstrip()
    if kind == EventKind.DURESS:
        return f"ALERT  duress PIN used by {who or 'a user'} - silent alert queued"
    if kind in (EventKind.DENIED_FACE, EventKind.DENIED_NO_FACE, EventKind.DENIED_LIVENESS):
        what = reason_words(reason) or EventKind(kind).heading.lower()
        if kind == EventKind.DENIED_FACE:
            what = "face does not match"
        target = f" user {number}" if number is not None else ""
        sep = "" if kind == EventKind.DENIED_FACE else " for"
        return f"DENIED  {what}{sep}{target}{queued}"
    if kind == EventKind.CODE_WRONG:
        return f"DENIED  {reason_words(reason) or 'wrong code'}"
    if kind == EventKind.LOCKOUT:
        lock = detail.get("lockout_s")
        span = f" for {duration(lock)}" if isinstance(lock, (int, float)) else ""
        return (
            f"LOCKED OUT  keypad locked{span}: {reason_words(reason) or 'too many tries'}{queued}"
        )
    if kind == EventKind.LOCKOUT_ENDED:
        return "READY  lockout ended"
    if kind == EventKind.EXIT:
        return "OPEN  exit button pressed"
    try:
        ek = EventKind(kind)
    except ValueError:
        return None
    if ek.alerted:
        return f"ALERT  {ek.heading}{(' - ' + who) if who else ''}{queued}"
    return None
