"""The remote-control settings as the provisioning template shows them (commented out) are
valid once uncommented, and bad values are named."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from appliance.config import Config, ConfigError, parse_config

EXAMPLE = Path(__file__).resolve().parents[2] / "provisioning" / "doorward.toml.example"


def test_the_templates_commented_mqtt_remote_doorbell_and_gsm_sections_are_valid() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    wanted = ("[alerts.gsm]", "[mqtt]", "[remote]", "[doorbell]")
    blocks = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip().splitlines()
        if lines and any(lines[0].startswith(f"# {w}") for w in wanted):
            blocks.append("\n".join(re.sub(r"^# ?", "", line) for line in lines))
    assert len(blocks) == 4
    cfg = parse_config(tomllib.loads("\n\n".join(blocks)))
    assert cfg.mqtt.tls_ca_file is not None and cfg.remote.sms_commands
    pins = re.search(r"^# (doorbell = \d+)", text, re.M)
    assert pins is not None
    assert parse_config(tomllib.loads(f"[hardware.pins]\n{pins.group(1)}\n")).hardware.pins.doorbell


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"hardware": {"pins": {"doorbell": 4}}}, "BCM pin 4 is used by both pir and doorbell"),
        ({"mqtt": {"discovery_prefix": "ha/#"}}, "mqtt.discovery_prefix"),
        ({"mqtt": {"ha_integration": "home assistant"}}, "mqtt.ha_integration"),
        ({"remote": {"sms_commands": True}}, "remote.sms_commands: needs the GSM modem"),
        ({"remote": {"max_skew_s": 0}}, "remote.max_skew_s"),
        ({"doorbell": {"repeat_s": -1}}, "doorbell.repeat_s"),
    ],
)
def test_bad_remote_settings_are_named(data, message) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Config.convert(data)


def test_the_doorbell_alert_goes_only_where_kinds_name_it() -> None:
    email = {"host": "mx", "from": "d@x.y",
             "to": ["all@x.y", {"to": "bell@x.y", "kinds": ["doorbell"]}]}  # fmt: skip
    gsm = {"port": "/dev/null", "to": ["+4470"]}
    twilio = {"account_sid": "AC1", "from": "+1", "to": ["+4471"], "kinds": ["doorbell"]}
    cfg = Config.convert({"alerts": {"email": email, "gsm": gsm, "twilio": twilio}})
    assert cfg.alerts.email.recipients("doorbell") == ["bell@x.y"]  # type: ignore[union-attr]
    assert cfg.alerts.email.recipients("forced") == ["all@x.y"]  # type: ignore[union-attr]
    assert cfg.alerts.gsm.recipients("doorbell") == []  # type: ignore[union-attr]
    assert cfg.alerts.twilio.recipients("doorbell") == ["+4471"]  # type: ignore[union-attr]


def test_doctor_checks_the_doorbell_pin_and_skips_an_unwired_one() -> None:
    from appliance.health.doctor import CheckFailed, check_pins

    assert "distinct BCM pins" in check_pins(Config())  # no doorbell: nothing to check
    assert check_pins(Config.convert({"hardware": {"pins": {"doorbell": 26}}})).startswith("16 ")
    with pytest.raises(CheckFailed, match="doorbell: BCM 2 is reserved for I2C SDA"):
        check_pins(Config.convert({"hardware": {"pins": {"doorbell": 2}}}))
