"""SMS commands on the pty modem simulator: allowed number AND one-time code, replies, replay,
spoofed senders, malformed text and a modem that loses messages."""

from __future__ import annotations

import logging
import threading

import pytest

from appliance.remote.codes import CodeBook, Throttle, current_code
from appliance.remote.control import RemoteControl
from appliance.remote.principals import add_principal
from appliance.remote.sms import SmsCommandReader, parse_command
from appliance.security import PinHasher
from tests.remote.fakes import FakeDoor
from tests.support.sim_modem import SimModem
from tests.support.waiting import FakeClock, eventually

HASHER = PinHasher("test-pepper")
OWNER = "+447700900123"


@pytest.fixture
def modem():
    with SimModem() as m:
        yield m


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(1_790_000_000.0)


@pytest.fixture
def door() -> FakeDoor:
    return FakeDoor()


@pytest.fixture
def owner(db):
    return add_principal(db, kind="owner", name="ada", phone=OWNER, may_unlock=True)


@pytest.fixture
def reader(db, door, modem, wall):
    codes = CodeBook(db, HASHER, door.device_id, wall_clock=wall)
    control = RemoteControl(door, db, codes, throttle=Throttle(clock=FakeClock()))
    r = SmsCommandReader(modem.port, 115200, control, timeout_s=3, poll_s=0.05, listen_s=0)
    yield r
    r.stop()


def replies_to(modem: SimModem, number: str) -> list[str]:
    return [s.text for s in modem.sent if s.number == number]


def test_unlock_from_the_owner_with_a_code_opens_once_and_the_same_sms_again_does_nothing(
    modem, reader, door, owner, wall
):
    text = f"UNLOCK {current_code(HASHER, owner.label, wall())}"
    modem.deliver(OWNER, text)
    assert reader.run_once() == 1
    assert door.unlocks == [{"by": "ada", "source": f"sms:{OWNER}", "method": "sms"}]
    assert replies_to(modem, OWNER) == ["UNLOCK: one pulse given"]
    assert modem.inbox == {}  # read messages are deleted
    modem.deliver(OWNER, text)  # the very same message again (a replay)
    assert reader.run_once() == 1
    assert len(door.unlocks) == 1
    assert replies_to(modem, OWNER)[-1] == "UNLOCK: refused (code_already_used)"
    assert [a[1] for a in door.audits] == ["code_already_used"]


def test_a_spoofed_sender_with_a_valid_code_does_nothing_and_gets_no_answer(
    modem, reader, door, owner, wall
):
    code = current_code(HASHER, owner.label, wall())
    modem.deliver("+447700900999", f"UNLOCK {code}")  # not an owner number
    modem.deliver("Ada", f"UNLOCK {code}")  # alphanumeric sender, as spoofing services send
    modem.deliver("07700900123", f"UNLOCK {code}")  # national form of the owner's number
    assert reader.run_once() == 3
    assert door.unlocks == [] and modem.sent == []
    assert [(a[0], a[1]) for a in door.audits] == [("remote_refused", "unknown_principal")] * 3
    # the owner's own code is still unused: the owner can use it now
    modem.deliver(OWNER, f"unlock {code}")
    reader.run_once()
    assert len(door.unlocks) == 1


def test_the_owner_number_without_a_code_is_refused(modem, reader, door, owner):
    modem.deliver(OWNER, "UNLOCK")
    reader.run_once()
    assert door.unlocks == []
    assert replies_to(modem, OWNER) == ["UNLOCK: refused (code_required)"]


def test_a_code_in_arabic_indic_digits_is_refused_and_the_session_goes_on(
    modem, reader, door, owner, wall
):
    modem.deliver(OWNER, "STATUS \u0661\u0662\u0663\u0664\u0665\u0666")  # UCS2
    modem.deliver(OWNER, f"STATUS {current_code(HASHER, owner.label, wall())}")
    assert reader.run_once() == 2
    assert replies_to(modem, OWNER) == [
        "STATUS: refused (malformed_code)",
        "STATUS door-t: locked, door closed, lockdown off",
    ]
    assert [a[1] for a in door.audits] == ["malformed_code", "status"]


def test_the_automatic_deletion_codings_decode_like_their_general_twins():
    """TS 23.038: DCS 01xxxxxx ('marked for automatic deletion') codes the alphabet like
    00xxxxxx: 0x48 is UCS2 (not GSM 7-bit), 0x40 GSM 7-bit."""
    from appliance.remote.pdu import decode_deliver
    from tests.support.sim_modem import deliver_pdu

    def with_dcs(pdu: str, old: str, new: str) -> str:
        i = pdu.index("00" + old + "62")  # PID 00, the DCS, then the timestamp (26-12-02...)
        return pdu[:i] + "00" + new + pdu[i + 4 :]

    ucs2 = deliver_pdu(OWNER, "STATUS \u0661")  # text outside GSM 7-bit: UCS2, DCS 0x08
    assert decode_deliver(with_dcs(ucs2, "08", "48")).text == "STATUS \u0661"
    gsm7 = deliver_pdu(OWNER, "STATUS 123456")  # DCS 0x00
    assert decode_deliver(with_dcs(gsm7, "00", "40")).text == "STATUS 123456"


def test_malformed_text_is_ignored_logged_and_unanswered(modem, reader, door, owner, caplog):
    caplog.set_level(logging.WARNING, logger="appliance.remote.sms")
    for text in ("hello door", "UNLOCKK 123456", "OK", '+CMTI: "SM",1', ""):
        modem.deliver(OWNER, text)
    assert reader.run_once() == 5
    assert door.unlocks == [] and door.audits == [] and modem.sent == []
    assert caplog.text.count("event=sms_ignored") == 5
    assert "hello door" not in caplog.text  # the text itself is not logged
    assert modem.inbox == {}


def test_status_lockdown_and_snapshot_are_answered_and_audited(modem, reader, door, owner, wall):
    for cmd in ("LOCKDOWN ON", "STATUS", "SNAPSHOT", "LOCKDOWN OFF"):
        modem.deliver(OWNER, f"{cmd} {current_code(HASHER, owner.label, wall())}")
        reader.run_once()
        wall.advance(30)  # one code per 30 s step
    assert replies_to(modem, OWNER) == [
        "LOCKDOWN ON: done",
        "STATUS door-t: locked, door closed, lockdown ON",
        "SNAPSHOT: saved on the door as snapshots/2026/12/02/x.jpg",
        "LOCKDOWN OFF: done",
    ]
    assert door.lockdowns == [(True, "ada", f"sms:{OWNER}"), (False, "ada", f"sms:{OWNER}")]
    assert [a[1] for a in door.audits] == ["lockdown_on", "status", "snapshot", "lockdown_off"]


def test_a_new_message_is_read_at_once_from_its_cmti_indication(modem, reader, door, owner, wall):
    done = threading.Event()
    reader.on_handled = lambda _h: done.set()
    session = threading.Thread(target=reader.run_once, kwargs={"listen_s": 10.0}, daemon=True)
    session.start()
    eventually(lambda: "AT+CMGL=4" in modem.commands, what="the reader's first sweep")
    modem.deliver(OWNER, f"UNLOCK {current_code(HASHER, owner.label, wall())}")
    assert done.wait(5), "the +CMTI indication was not acted on"
    assert modem.indications == 1 and reader.sessions == 0  # inside the session, not a sweep
    assert len(door.unlocks) == 1
    reader._stop.set()
    session.join(5)


def test_a_modem_that_loses_indications_or_messages(modem, reader, door, owner, wall):
    reader.start()
    eventually(lambda: reader.sessions >= 1, what="a first reader session")
    modem.drop_indications = True
    modem.deliver(OWNER, f"UNLOCK {current_code(HASHER, owner.label, wall())}")
    eventually(lambda: door.unlocks, what="the next sweep finds the message without +CMTI")
    modem.drop_indications = False
    modem.deliver(OWNER, "STATUS 000000", store=False)  # announced, never stored
    wall.advance(30)
    modem.deliver(OWNER, f"STATUS {current_code(HASHER, owner.label, wall())}")
    eventually(lambda: any(r.startswith("STATUS") for r in replies_to(modem, OWNER)),
               what="the next message is still handled")  # fmt: skip
    assert len(door.unlocks) == 1 and reader.last_error is None


def test_a_dead_modem_is_an_error_of_the_session_not_of_the_door(door, db, wall):
    with SimModem(mode="no_answer") as dead:
        control = RemoteControl(door, db, CodeBook(db, HASHER, "door-t", wall_clock=wall))
        r = SmsCommandReader(dead.port, 115200, control, timeout_s=0.5, poll_s=0.05, listen_s=0)
        r.start()
        eventually(lambda: r.last_error, what="the reader reports the dead modem")
        r.stop()
    assert "no answer" in (r.last_error or "")


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("unlock 123456", ("unlock", "123456")), ("  Lockdown   on 1 ", ("lockdown_on", "1")),
     ("STATUS", ("status", None)), ("UNLOCK 1 2", None), ("LOCKDOWN", None), ("", None)],
)  # fmt: skip
def test_parse_command(text, parsed):
    assert parse_command(text) == parsed
