"""Owns AlertMessage, the one shape every alert channel receives, and the channel port."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from appliance.core.kinds import EventKind


class ChannelError(RuntimeError):
    """A channel failed to deliver. transient=False means retrying the same message is futile."""

    def __init__(
        self,
        message: str,
        *,
        transient: bool = True,
        uncertain: bool = False,
        reached: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.transient = transient
        # the failure came after the message was handed over (SMTP: after DATA): it may have
        # arrived, so it is not sent again at once (see Dispatcher._failed)
        self.uncertain = uncertain
        # the recipients that did get it before the failure (an SMS to several numbers): a
        # retry of the same delivery skips them (AlertMessage.skip_recipients)
        self.reached = reached


def number_key(number: str) -> str:
    """A phone number as the recipient lists compare it: '+44 7700-900123' -> '+447700900123'."""
    number = number.strip()
    return ("+" if number.startswith("+") else "") + re.sub(r"[^0-9]", "", number)


def recipients_failed(failures: list[ChannelError], reached: tuple[str, ...]) -> ChannelError:
    """One error for the recipients of a send that failed: permanent only if every one of
    the failures was; `reached` says who got it (a retry skips them)."""
    transient = any(f.transient for f in failures)
    text = "; ".join(str(f) for f in failures)
    if reached:
        text += f" (reached {len(reached)} other recipient(s))"
    return ChannelError(text, transient=transient, reached=reached)


@dataclass(frozen=True)
class AlertMessage:
    id: str  # the alert's UUID: idempotency key (email Message-ID, SMS de-duplication)
    kind: str  # e.g. "denied_face", "lockout", "duress", "forced", "held_open", "tamper"
    time: datetime  # timezone-aware, UTC
    device_id: str
    door: str  # human name of the door
    user_number: int | None = None
    distance: float | None = None
    detail: str = ""
    count: int = 1  # events grouped into this alert (incident grouping)
    user_name: str | None = None  # the enrolled name of user_number, when the door knows it
    photo_jpeg: bytes | None = field(default=None, repr=False)
    # numbers (number_key) this delivery already reached on an earlier attempt: not again
    skip_recipients: frozenset[str] = frozenset()

    @property
    def title(self) -> str:
        try:
            return EventKind(self.kind).heading
        except ValueError:  # an alert of a newer door, or a test kind
            return self.kind.replace("_", " ")

    def summary(self) -> str:
        """One line for SMS and subjects: what, where, when, who tried."""
        parts = [f"{self.title} at {self.door}", self.time.strftime("%Y-%m-%d %H:%M:%S UTC")]
        if self.user_number is not None:
            who = f"{self.user_name} (user #{self.user_number})" if self.user_name else ""
            parts.append(who or f"user #{self.user_number}")
        if self.distance is not None:
            parts.append(f"face distance {self.distance:.2f}")
        if self.count > 1:
            parts.append(f"{self.count} events")
        return ", ".join(parts)


class Channel(Protocol):
    """An alert channel. send() returns on success and raises ChannelError on failure."""

    name: str

    def send(self, message: AlertMessage) -> None: ...

    def close(self) -> None: ...
