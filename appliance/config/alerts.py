"""[alerts] and its channels: email, twilio, gsm, mailbox."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from msgspec import Meta, field
from msgspec.structs import force_setattr

from appliance.config.base import Delay, Seconds, SecretRef, Section, key_error
from appliance.core.kinds import EventKind

ALERT_KINDS = tuple(k.value for k in EventKind if k.alerted)  # in appliance.core.kinds' order
_TEMPLATE_FIELDS = {
    "id": "x",
    "kind": "denied_face",
    "title": "Face mismatch",
    "door": "Front door",
    "device": "door-1",
    "time": "2026-01-01 00:00:00 UTC",
    "user": "12",
    "distance": "0.61",
    "count": 1,
    "detail": "",
    "summary": "",
}


# a GSM recipient: what AT+CMGS takes once spaces, dashes and dots are removed (brackets are
# refused: "+44 (0)7700..." has no one right reading)
_GSM_NUMBER = re.compile(r"\+?[0-9]{3,20}")
_GSM_SEPARATORS = re.compile(r"[\s\-.]")


def _check_kinds(kinds: list[str] | None, key: str = "kinds") -> list[str] | None:
    if kinds is not None:
        unknown = sorted(set(kinds) - set(ALERT_KINDS))
        if unknown:
            raise key_error(key, f"unknown alert kind(s) {unknown}; known: {list(ALERT_KINDS)}")
    return kinds


def _check_template(template: str | None, key: str) -> str | None:
    if template is not None:
        try:
            template.format(**_TEMPLATE_FIELDS)
        except (KeyError, IndexError, ValueError) as exc:
            raise key_error(
                key, f"bad template placeholder {exc}; allowed: {sorted(_TEMPLATE_FIELDS)}"
            ) from None
    return template


class Recipient(Section, frozen=True, kw_only=True):
    """One recipient with its own alert kinds: to = [{ to = "+4470...", kinds = ["duress"] }]."""

    to: Annotated[str, Meta(min_length=1)]
    kinds: list[str] | None = None

    def __post_init__(self) -> None:
        _check_kinds(self.kinds)


def _gets(kinds: list[str] | None, kind: str) -> bool:
    return kinds is None or kind in kinds or kind == "test"


def _opt_in(kind: str) -> bool:
    """An opt-in kind (the doorbell) goes only where a `kinds` list names it."""
    try:
        return EventKind(kind).opt_in
    except ValueError:
        return False


class _ChannelSection(Section, frozen=True, kw_only=True):
    enabled: bool = True
    # which alert kinds this channel's recipients get; None = every kind
    kinds: list[str] | None = None
    # plain addresses/numbers, or { to = ..., kinds = [...] } for per-recipient kinds
    to: Annotated[list[Recipient | str], Meta(min_length=1)]

    def __post_init__(self) -> None:
        _check_kinds(self.kinds)
        recipients = []
        for i, r in enumerate(self.to):
            if isinstance(r, str):
                if not r.strip():
                    raise key_error(f"to[{i}]", "must not be empty")
                r = Recipient(to=r)
            recipients.append(r)
        force_setattr(self, "to", recipients)  # plain strings become Recipient(to=...)

    def recipients(self, kind: str) -> list[str]:
        """Who gets an alert of `kind` on this channel."""
        if not self.enabled or not _gets(self.kinds, kind):
            return []
        # an opt-in kind: to a recipient whose own kinds name it, or, with no kinds of its
        # own, when the channel's kinds name it
        named = self.kinds is not None and kind in self.kinds
        # __post_init__ made every item a Recipient
        opt_in = _opt_in(kind)
        return [
            r.to
            for r in self.to
            if isinstance(r, Recipient)
            and _gets(r.kinds, kind)
            and (not opt_in or named or (r.kinds is not None and kind in r.kinds))
        ]

    def wants(self, kind: str) -> bool:
        return bool(self.recipients(kind))


class EmailConfig(_ChannelSection, frozen=True, kw_only=True):
    host: Annotated[str, Meta(min_length=1)]
    port: Annotated[int, Meta(ge=1, le=65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretRef = SecretRef()
    # extra CA bundle to trust (a private mail relay); None = the system store
    ca_file: Path | None = None
    from_: Annotated[str, Meta(min_length=3)] = field(name="from")
    timeout_s: Seconds = 10.0
    subject_template: str = "[Doorward] {title} at {door} {time}"
    body_template: str | None = None
    # a bigger photo is left out of the email (it stays on the door); 0 = never attached.
    # A relay that refuses the message as too big (552) gets it again without the photo
    max_photo_bytes: Annotated[int, Meta(ge=0)] = 1_000_000

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_template(self.subject_template, "subject_template")
        _check_template(self.body_template, "body_template")


class TwilioConfig(_ChannelSection, frozen=True, kw_only=True):
    account_sid: Annotated[str, Meta(min_length=1)]
    token: SecretRef = SecretRef(env="DOORWARD_TWILIO_TOKEN")
    from_: str | None = field(name="from", default=None)
    messaging_service_sid: str | None = None
    # e.g. a proxy or a Twilio-shaped test server; None = https://api.twilio.com
    api_base: Annotated[str, Meta(pattern=r"^https?://")] | None = None
    timeout_s: Seconds = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.from_ and not self.messaging_service_sid:
            raise ValueError("set either from or messaging_service_sid")


class GsmConfig(_ChannelSection, frozen=True, kw_only=True):
    port: Annotated[str, Meta(min_length=1)]
    baud: Annotated[int, Meta(gt=0)] = 115200
    pin: SecretRef = SecretRef()
    timeout_s: Seconds = 20.0
    # longer texts are split into at most this many SMS; the last part is shortened
    max_parts: Annotated[int, Meta(ge=1, le=10)] = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        # AT+CMGS takes digits and one leading +: "+44 7700-900123" is written down as
        # "+447700900123" here, and anything else is refused now, not at the first alert
        recipients = []
        for i, r in enumerate(self.to):
            assert isinstance(r, Recipient)  # _ChannelSection.__post_init__ made it one
            number = _GSM_SEPARATORS.sub("", r.to)
            if not _GSM_NUMBER.fullmatch(number):
                raise key_error(
                    f"to[{i}]",
                    f"{r.to!r} is not a phone number the modem can text "
                    '(digits with an optional leading +, e.g. "+447700900123")',
                )
            recipients.append(r if number == r.to else Recipient(to=number, kinds=r.kinds))
        force_setattr(self, "to", recipients)


class MailboxConfig(Section, frozen=True, kw_only=True):
    enabled: bool = True
    # None = <data_dir>/mailbox
    path: Path | None = None


class AlertsConfig(Section, frozen=True, kw_only=True):
    email: EmailConfig | None = None
    twilio: TwilioConfig | None = None
    gsm: GsmConfig | None = None
    mailbox: MailboxConfig = MailboxConfig()
    # a delivery is given up only after min_attempts real attempts whose backoff adds up to
    # give_up_after_s (a count of attempts, not the wall clock: a clock step changes nothing)
    give_up_after_s: Seconds = 86400.0
    min_attempts: Annotated[int, Meta(ge=1, le=10000)] = 5
    backoff_initial_s: Seconds = 2.0
    backoff_max_s: Seconds = 300.0
    # SMS moves from Twilio to the GSM modem after Twilio has failed for this long
    twilio_failover_s: Seconds = 120.0
    # once failed over, a new SMS alert tries Twilio again after this long (the modem
    # carries it if Twilio still fails)
    twilio_retry_s: Seconds = 900.0
    # per channel (email, sms) deliveries per rolling hour; duress/forced/tamper bypass it
    hourly_cap: Annotated[int, Meta(ge=1)] = 30
    # events of one burst within this window become one incident
    incident_window_s: Seconds = 180.0
    # a follow-up for an incident already sent waits this long to collect the rest of the burst
    incident_hold_s: Delay = 60.0
    poll_interval_s: Seconds = 0.5
    probe_enabled: bool = True
    probe_host: str = "1.1.1.1"
    probe_port: Annotated[int, Meta(ge=1, le=65535)] = 53
    probe_interval_s: Seconds = 30.0
    probe_timeout_s: Seconds = 3.0
