"""[remote] and [doorbell]: commands from outside the door (MQTT, SMS) and the doorbell."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from appliance.config.base import Seconds, Section


class RemoteConfig(Section, frozen=True, kw_only=True):
    # read commands (STATUS, LOCKDOWN ON/OFF, UNLOCK, SNAPSHOT + one-time code) from the GSM
    # modem of [alerts.gsm]; only from the owner numbers enrolled on the admin page
    sms_commands: bool = False
    # the modem is shared with the GSM alert channel: it is read for sms_listen_s every
    # sms_poll_s (a new message waits at most about sms_poll_s)
    sms_poll_s: Seconds = 10.0
    sms_listen_s: Annotated[float, Meta(ge=0, le=60)] = 2.0
    # a signed command's timestamp may differ from the door's clock by at most this much
    max_skew_s: Annotated[float, Meta(gt=0, le=600)] = 60.0
    # per integration or owner: attempts per minute, and failed codes within fail_window_s
    # that block it for block_s
    attempts_per_minute: Annotated[int, Meta(ge=1, le=600)] = 5
    fail_limit: Annotated[int, Meta(ge=1, le=100)] = 5
    fail_window_s: Seconds = 600.0
    block_s: Seconds = 900.0


class DoorbellConfig(Section, frozen=True, kw_only=True):
    # the button is hardware.pins.doorbell; a press records a `doorbell` event with a
    # snapshot (published to MQTT/Home Assistant) at most every repeat_s
    repeat_s: Annotated[float, Meta(gt=0, le=3600)] = 5.0
    # also queue an alert; it goes only to the channels or recipients whose `kinds` name
    # "doorbell" (e.g. [alerts.email] to = [{ to = "me@example.org", kinds = ["doorbell"] }])
    alert: bool = False
