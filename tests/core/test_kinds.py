"""The one vocabulary of event kinds: every layer's sets come from it and agree with it."""

from __future__ import annotations

import pytest

from appliance.alerts.incidents import GROUPABLE_KINDS, URGENT_KINDS
from appliance.alerts.message import AlertMessage
from appliance.config import ALERT_KINDS, Config
from appliance.core import EventKind, Record
from appliance.door.recorder import BATCHED_KINDS


def test_layers_derive_their_sets_from_the_vocabulary() -> None:
    assert set(ALERT_KINDS) == {k for k in EventKind if k.alerted}
    assert {k for k in EventKind if k.urgent} == URGENT_KINDS
    assert {k for k in EventKind if k.urgent} == {
        "duress",
        "forced",
        "tamper",
        "lockdown_on",
        "fire_alarm",
    }
    assert {k for k in EventKind if k.groupable} == GROUPABLE_KINDS
    assert {k for k in EventKind if k.batched} == BATCHED_KINDS


def test_no_kind_is_both_informational_and_an_alert_or_urgent_and_grouped() -> None:
    for k in EventKind:
        assert not (k.batched and k.alerted), k
        assert not (k.urgent and k.groupable), k
        assert k.heading and k.heading[0].isupper(), k


def test_a_record_of_a_kind_outside_the_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="forcd"):
        Record("forcd")
    assert Record("forced", alert=True).urgent and not Record("granted").urgent


def test_config_refuses_an_unknown_alert_kind_by_name() -> None:
    from appliance.config import ConfigError

    with pytest.raises(ConfigError, match="forcd"):
        Config.convert(
            {"alerts": {"mailbox": {"enabled": True}, "email": {
                "host": "127.0.0.1", "from": "d@example.test",
                "to": [{"to": "o@example.test", "kinds": ["forced", "forcd"]}]}}}
        )  # fmt: skip


def test_alert_titles_come_from_the_vocabulary() -> None:
    from datetime import UTC, datetime

    msg = AlertMessage(id="1", kind="forced", time=datetime.now(UTC), device_id="d", door="D")
    assert msg.title == EventKind.FORCED.heading == "Door forced open"
