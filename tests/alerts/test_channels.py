"""Each channel against a real peer on loopback: aiosmtpd, the twilio client, a pty modem."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from PIL import Image

from appliance.alerts.channels.email import EmailChannel
from appliance.alerts.channels.gsm import SMS_LIMIT, GsmChannel, split_sms
from appliance.alerts.channels.twilio_sms import TwilioChannel
from appliance.alerts.message import AlertMessage, ChannelError
from appliance.config import ConfigError, EmailConfig, GsmConfig, TwilioConfig, parse_config
from tests.support.loopback import SmtpServer, TwilioServer
from tests.support.sim_modem import SimModem
from tests.support.waiting import free_port

from .support import email_section, gsm_section, jpeg_bytes, twilio_section


def _message(**kw: object) -> AlertMessage:
    base: dict[str, object] = {
        "id": "3f0c6a56-1111-4c4c-9c9c-0123456789ab",
        "kind": "denied_face",
        "time": datetime(2026, 11, 25, 22, 1, 2, tzinfo=UTC),
        "device_id": "door-t",
        "door": "Back door",
        "user_number": 42,
        "distance": 0.734,
        "photo_jpeg": jpeg_bytes(3),
    }
    base.update(kw)
    return AlertMessage(**base)  # type: ignore[arg-type]


def test_email_carries_fields_and_a_decodable_jpeg(smtp: SmtpServer) -> None:
    with EmailChannel(EmailConfig.convert(email_section(smtp.port))) as channel:
        channel.send(_message())
    [msg] = smtp.sink.messages
    assert msg["Message-ID"] == "<3f0c6a56-1111-4c4c-9c9c-0123456789ab@door-t.doorward>"
    subject = str(msg["Subject"])
    assert "Face mismatch" in subject and "Back door" in subject
    assert "2026-11-25 22:01:02" in subject
    body = msg.get_body(preferencelist=("plain",)).get_content()
    assert "User number: 42" in body and "Distance:    0.73" in body and "denied_face" in body
    [att] = list(msg.iter_attachments())
    assert att.get_content_type() == "image/jpeg"
    img = Image.open(io.BytesIO(att.get_content()))
    img.load()
    assert img.format == "JPEG" and img.size == (64, 48)


def test_email_templates_are_configurable(smtp: SmtpServer) -> None:
    cfg = email_section(
        smtp.port, subject_template="ALARM {kind} #{user}", body_template="d={distance} n={count}"
    )
    with EmailChannel(EmailConfig.convert(cfg)) as channel:
        channel.send(_message(count=3, photo_jpeg=None))
    [msg] = smtp.sink.messages
    assert msg["Subject"] == "ALARM denied_face #42"
    assert msg.get_body().get_content().strip() == "d=0.73 n=3"
    assert list(msg.iter_attachments()) == []


def test_email_bad_template_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"alerts.email.body_template.*'who'"):
        parse_config({"alerts": {"email": email_section(25, body_template="{who}")}})


def test_email_server_down_is_a_transient_error() -> None:
    channel = EmailChannel(EmailConfig.convert(email_section(free_port())))
    with pytest.raises(ChannelError, match="unreachable") as err:
        channel.send(_message())
    assert err.value.transient


def test_twilio_official_client_posts_to_the_configured_base(twilio: TwilioServer) -> None:
    channel = TwilioChannel(TwilioConfig.convert(twilio_section(twilio)), twilio.token)
    channel.send(_message())
    [post] = twilio.posts
    assert post.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert post.auth == (twilio.account_sid, twilio.token)
    assert post.form["To"] == "+15550000002" and post.form["From"] == "+15550000001"
    assert "Face mismatch at Back door" in post.form["Body"] and "user #42" in post.form["Body"]
    assert channel.last_sids == [post.sid]


def test_twilio_messaging_service_instead_of_from(twilio: TwilioServer) -> None:
    section = twilio_section(twilio, messaging_service_sid="MG" + "1" * 32)
    del section["from"]
    TwilioChannel(TwilioConfig.convert(section), twilio.token).send(_message())
    assert twilio.posts[0].form["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in twilio.posts[0].form


@pytest.mark.parametrize("mode", ["500", "hang"])
def test_twilio_500_and_timeout_are_transient(twilio: TwilioServer, mode: str) -> None:
    twilio.mode, twilio.hang_s = mode, 3.0
    channel = TwilioChannel(TwilioConfig.convert(twilio_section(twilio)), twilio.token)
    with pytest.raises(ChannelError) as err:
        channel.send(_message())
    assert err.value.transient
    assert ("500" in str(err.value)) if mode == "500" else ("Timeout" in str(err.value))


def test_twilio_wrong_token_is_permanent(twilio: TwilioServer) -> None:
    channel = TwilioChannel(TwilioConfig.convert(twilio_section(twilio)), "wrong")
    with pytest.raises(ChannelError, match="401") as err:
        channel.send(_message())
    assert not err.value.transient


def test_gsm_sends_text_mode_sms(modem: SimModem) -> None:
    channel = GsmChannel(GsmConfig.convert(gsm_section(modem, to=["+1555001", "+1555002"])))
    channel.send(_message())
    assert [s.number for s in modem.sent] == ["+1555001", "+1555002"]
    assert "Face mismatch at Back door" in modem.sent[0].text
    for cmd in ("AT", "AT+CMGF=1", "AT+CREG?", "AT+CSQ", 'AT+CMGS="+1555001"'):
        assert cmd in modem.commands
    assert channel.last_refs == [1, 2]


def test_gsm_sim_pin_is_entered_when_asked() -> None:
    with SimModem(mode="pin", pin="4321") as modem:
        GsmChannel(GsmConfig.convert(gsm_section(modem)), pin="4321").send(_message())
        assert 'AT+CPIN="4321"' in modem.commands and len(modem.sent) == 1


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("cms_error", r"\+CMS ERROR 500"),
        ("no_network", "not registered"),
        ("no_signal", "no usable signal"),
        ("no_answer", "no answer to AT"),
    ],
)
def test_gsm_failures_raise_clear_transient_errors(mode: str, error: str) -> None:
    with SimModem(mode=mode) as modem:  # type: ignore[arg-type]
        channel = GsmChannel(GsmConfig.convert(gsm_section(modem)))
        with pytest.raises(ChannelError, match=error) as err:
            channel.send(_message())
        assert err.value.transient
        assert modem.sent == []


def test_gsm_cms_error_for_a_rejected_number_is_permanent() -> None:
    with SimModem(mode="cms_error", cms_code=21) as modem:
        with pytest.raises(ChannelError, match="CMS ERROR 21") as err:
            GsmChannel(GsmConfig.convert(gsm_section(modem))).send(_message())
        assert not err.value.transient


def test_gsm_missing_modem() -> None:
    channel = GsmChannel(
        GsmConfig.convert({"port": "/dev/doorward-no-modem", "to": ["+15550000003"]})
    )
    with pytest.raises(ChannelError, match="gsm modem missing at /dev/doorward-no-modem"):
        channel.send(_message())


def test_long_sms_is_split_then_shortened_deliberately(modem: SimModem) -> None:
    long_detail = "lorem ipsum dolor sit amet " * 30  # ~810 characters
    channel = GsmChannel(GsmConfig.convert(gsm_section(modem, max_parts=2)))
    channel.send(_message(detail=long_detail + "ÄÖ {x}"))
    texts = [s.text for s in modem.sent]
    assert [t[:6] for t in texts] == ["(1/2) ", "(2/2) "]
    assert all(len(t) <= SMS_LIMIT and t.isascii() for t in texts)
    assert texts[-1].endswith("...")


def test_split_sms_short_and_exact() -> None:
    assert split_sms("hello  there", 3) == ["hello there"]
    assert split_sms("x" * 160, 3) == ["x" * 160]
    parts = split_sms("word " * 60, 5)
    assert len(parts) == 2 and all(len(p) <= 160 for p in parts)
    assert " ".join(p[6:] for p in parts).split() == ["word"] * 60
    [one] = split_sms("é" * 400, 1)
    assert len(one) == 160 and one.endswith("...") and one.startswith("e")


def test_split_sms_with_ten_parts_keeps_every_part_within_one_sms() -> None:
    text = " ".join(f"+denied_face: attempt {i}" for i in range(120))
    parts = split_sms(text, 10)
    assert len(parts) == 10 and parts[-1].startswith("(10/10) ")
    assert max(len(p) for p in parts) <= SMS_LIMIT


def test_gsm_numbers_are_written_the_modem_way_or_refused_by_key() -> None:
    to = ["+44 7700 900123", {"to": "+1-555-000-0003", "kinds": ["forced"]}, "07700.900124"]
    gsm = GsmConfig.convert({"port": "/dev/ttyUSB2", "to": to})
    assert gsm.recipients("forced") == ["+447700900123", "+15550000003", "07700900124"]
    for bad in ("+44 (0)7700 900123", "call me", "+1"):
        with pytest.raises(ConfigError, match=r"alerts\.gsm\.to\[1\].*not a phone number"):
            parse_config({"alerts": {"gsm": {"port": "/dev/ttyUSB2", "to": ["+15550000003", bad]}}})


def test_gsm_skips_numbers_this_delivery_already_reached(modem: SimModem) -> None:
    channel = GsmChannel(GsmConfig.convert(gsm_section(modem, to=["+1555001", "+1555002"])))
    channel.send(_message(skip_recipients=frozenset({"+1555001"})))
    assert [s.number for s in modem.sent] == ["+1555002"]


def test_a_photo_too_big_for_the_relay_is_left_out_not_the_email() -> None:
    """The relay refuses the message as too big (552, a permanent 5xx): the same email goes
    again without the photo, saying so, instead of the alert's email failing."""
    import os

    server = SmtpServer(data_size_limit=200_000).start()
    try:
        photo = b"\xff\xd8" + os.urandom(400_000) + b"\xff\xd9"
        with EmailChannel(EmailConfig.convert(email_section(server.port))) as channel:
            channel.send(_message(photo_jpeg=photo))
        [msg] = server.sink.messages
        assert list(msg.iter_attachments()) == [] and msg["X-Doorward-Photo"] == "left out"
        body = msg.get_body(preferencelist=("plain",)).get_content()
        assert "Face mismatch" in body and "refused the message as too big" in body
    finally:
        server.stop()


def test_a_photo_over_max_photo_bytes_is_not_attached(smtp: SmtpServer) -> None:
    section = email_section(smtp.port, max_photo_bytes=1000)
    with EmailChannel(EmailConfig.convert(section)) as channel:
        channel.send(_message(photo_jpeg=b"\xff\xd8" + b"\0" * 2000 + b"\xff\xd9"))
        channel.send(
            _message(id="3f0c6a56-2222-4c4c-9c9c-0123456789ab", photo_jpeg=b"\xff\xd8\xff\xd9")
        )
    big, small = smtp.sink.messages
    assert list(big.iter_attachments()) == [] and "max_photo_bytes (1000)" in str(
        big.get_body(preferencelist=("plain",)).get_content()
    )
    assert len(list(small.iter_attachments())) == 1
