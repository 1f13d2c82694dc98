"""Remote commands: principal, one-time code (TOTP or signed), replay, rate limit, audit."""

from __future__ import annotations

import pytest

from appliance.remote.codes import CodeBook, Throttle, current_code, hmac_key, sign
from appliance.remote.control import RemoteControl, Request
from appliance.remote.principals import PrincipalError, add_principal, update_principal
from appliance.security import PinHasher
from tests.remote.fakes import FakeDoor
from tests.support.waiting import FakeClock

HASHER = PinHasher("test-pepper")
T0 = 1_790_000_000.0  # a wall-clock instant on a TOTP step boundary's far side


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def door() -> FakeDoor:
    return FakeDoor()


@pytest.fixture
def control(db, door, wall) -> RemoteControl:
    codes = CodeBook(db, HASHER, door.device_id, wall_clock=wall)
    return RemoteControl(door, db, codes, throttle=Throttle(clock=FakeClock()), clock=FakeClock())


def ha(db, may_unlock: bool = True):
    return add_principal(db, kind="integration", name="home-assistant", may_unlock=may_unlock)


def unlock(code: str | None, **kw) -> Request:
    return Request("unlock", "mqtt", "home-assistant", "mqtt:doorward/door-t/command", code, **kw)


def test_a_valid_totp_unlocks_once_and_the_same_code_again_does_nothing(db, control, door, wall):
    p = ha(db)
    code = current_code(HASHER, p.label, wall())
    first = control.handle(unlock(code))
    assert first.ok and door.unlocks == [
        {"by": "home-assistant", "source": "mqtt:doorward/door-t/command", "method": "mqtt"}
    ]
    again = control.handle(unlock(code))
    assert not again.ok and again.reason == "code_already_used"
    assert len(door.unlocks) == 1
    assert door.audits[-1][0] == "remote_refused" and door.audits[-1][1] == "code_already_used"
    # an earlier step's code (still inside the window) is a replay too
    wall.advance(30)
    older = current_code(HASHER, p.label, wall() - 60)
    assert control.handle(unlock(older)).reason in ("code_already_used", "wrong_code")
    assert control.handle(unlock(current_code(HASHER, p.label, wall()))).ok
    assert len(door.unlocks) == 2


def test_the_used_step_survives_a_restart(db, door, wall):
    p = ha(db)
    code = current_code(HASHER, p.label, wall())
    a = RemoteControl(door, db, CodeBook(db, HASHER, "door-t", wall_clock=wall))
    assert a.handle(unlock(code)).ok
    b = RemoteControl(door, db, CodeBook(db, HASHER, "door-t", wall_clock=wall))  # new process
    assert b.handle(unlock(code)).reason == "code_already_used"


@pytest.mark.parametrize(
    ("code", "reason"),
    [(None, "code_required"), ("12345", "malformed_code"), ("abcdef", "malformed_code"),
     ("\uff11\uff12\uff13\uff14\uff15\uff16", "malformed_code"),  # fullwidth digits
     ("\u0661\u0662\u0663\u0664\u0665\u0666", "malformed_code"),  # Arabic-Indic digits
     ("123456\n", "malformed_code")],
)  # fmt: skip
def test_an_unlock_without_a_valid_code_is_refused_and_audited(db, control, door, code, reason):
    ha(db)
    r = control.handle(unlock(code))
    assert not r.ok and r.reason == reason and door.unlocks == []
    kind, why, detail = door.audits[-1]
    assert (kind, why) == ("remote_refused", reason)
    assert detail["by"] == "home-assistant" and detail["source"].startswith("mqtt:")


def test_codes_in_other_digits_count_as_failed_codes(db, door, wall):
    """Unicode digits are refused like a wrong code (audited, and counted towards the block),
    not an exception out of handle()."""
    p = ha(db)
    tclock = FakeClock()
    throttle = Throttle(limit=10, window_s=60, fail_limit=2, block_s=900, clock=tclock)
    control = RemoteControl(door, db, CodeBook(db, HASHER, "door-t", wall_clock=wall),
                            throttle=throttle, clock=tclock)  # fmt: skip
    for code in ("\uff11" * 6, "\u0663" * 6):
        assert control.handle(unlock(code)).reason == "malformed_code"
    good = current_code(HASHER, p.label, wall())
    assert control.handle(unlock(good)).reason == "rate_limited" and door.unlocks == []
    assert [a[1] for a in door.audits] == ["malformed_code", "malformed_code", "rate_limited"]


def test_a_wrong_code_is_refused(db, control, door, wall):
    p = ha(db)
    good = current_code(HASHER, p.label, wall())
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    assert control.handle(unlock(wrong)).reason == "wrong_code" and door.unlocks == []


def test_an_integration_not_allowed_to_unlock_is_refused_even_with_a_good_code(
    db, control, door, wall
):
    p = ha(db, may_unlock=False)
    r = control.handle(unlock(current_code(HASHER, p.label, wall())))
    assert r.reason == "not_allowed_to_unlock" and door.unlocks == []


def test_an_unknown_or_disabled_integration_is_refused(db, control, door, wall):
    p = ha(db)
    code = current_code(HASHER, p.label, wall())
    r = control.handle(Request("unlock", "mqtt", "node-red", "mqtt:x", code))
    assert r.reason == "unknown_principal"
    update_principal(db, p.id, active=False)
    assert control.handle(unlock(code)).reason == "unknown_principal" and door.unlocks == []


def test_failed_codes_block_the_principal_and_attempts_are_rate_limited(db, door, wall):
    p = ha(db)
    tclock = FakeClock()
    throttle = Throttle(limit=3, window_s=60, fail_limit=2, block_s=900, clock=tclock)
    control = RemoteControl(door, db, CodeBook(db, HASHER, "door-t", wall_clock=wall),
                            throttle=throttle, clock=tclock)  # fmt: skip
    assert control.handle(unlock("000000")).reason in ("wrong_code",)
    assert control.handle(unlock("000001")).reason == "wrong_code"
    # blocked now, even with the right code
    good = current_code(HASHER, p.label, wall())
    assert control.handle(unlock(good)).reason == "rate_limited" and door.unlocks == []
    tclock.advance(901)
    assert control.handle(unlock(good)).ok
    # attempts: 3 per minute, the 4th refused whatever it carries
    assert control.handle(Request("snapshot", "mqtt", "home-assistant", "mqtt:x")).ok
    assert control.handle(Request("snapshot", "mqtt", "home-assistant", "mqtt:x")).ok
    assert control.handle(Request("snapshot", "mqtt", "home-assistant", "mqtt:x")).reason == (
        "rate_limited"
    )


def test_a_signed_command_acts_once_and_a_stale_or_forged_one_never(db, control, door, wall):
    p = ha(db)
    key = hmac_key(HASHER, p.label)
    ts, nonce = int(wall()), "n0nce-0001"
    sig = sign(key, "door-t", "unlock", ts, nonce)
    assert control.handle(unlock(None, ts=ts, nonce=nonce, sig=sig)).ok
    assert control.handle(unlock(None, ts=ts, nonce=nonce, sig=sig)).reason == "nonce_already_used"
    old = int(wall()) - 120
    stale = sign(key, "door-t", "unlock", old, "n0nce-0002")
    assert control.handle(unlock(None, ts=old, nonce="n0nce-0002", sig=stale)).reason == (
        "stale_timestamp"
    )
    # signed for another action (lockdown_off) cannot unlock
    other = sign(key, "door-t", "lockdown_off", ts, "n0nce-0003")
    assert control.handle(unlock(None, ts=ts, nonce="n0nce-0003", sig=other)).reason == (
        "bad_signature"
    )
    assert len(door.unlocks) == 1


def test_lockdown_blocks_a_remote_unlock_and_lockdown_off_needs_a_code(db, control, door, wall):
    p = ha(db)
    assert control.handle(Request("lockdown_on", "mqtt", "home-assistant", "mqtt:x")).ok
    assert door.lockdown and door.lockdowns == [(True, "home-assistant", "mqtt:x")]
    r = control.handle(unlock(current_code(HASHER, p.label, wall())))
    assert r.reason == "lockdown_active" and door.unlocks == []
    assert control.handle(Request("lockdown_off", "mqtt", "home-assistant", "mqtt:x")).reason == (
        "code_required"
    )
    wall.advance(30)
    code = current_code(HASHER, p.label, wall())
    assert control.handle(Request("lockdown_off", "mqtt", "home-assistant", "mqtt:x", code)).ok
    assert not door.lockdown
    assert [a[1] for a in door.audits if a[0] == "remote_command"] == ["lockdown_on",
                                                                       "lockdown_off"]  # fmt: skip


def test_principal_input_errors_name_the_field(db):
    with pytest.raises(PrincipalError, match="^phone:"):
        add_principal(db, kind="owner", name="ada", phone="07700 900123")
    with pytest.raises(PrincipalError, match="^name:"):
        add_principal(db, kind="integration", name="home assistant")
    add_principal(db, kind="owner", name="ada", phone="+44 7700 900123")
    with pytest.raises(PrincipalError, match="already an owner number"):
        add_principal(db, kind="owner", name="bob", phone="+447700900123")


def test_a_flood_from_unknown_senders_is_throttled_and_audited_once_a_minute(db, door, wall):
    tclock = FakeClock()
    control = RemoteControl(door, db, CodeBook(db, HASHER, "door-t", wall_clock=wall),
                            throttle=Throttle(limit=5, clock=tclock), clock=tclock)  # fmt: skip
    for i in range(50):
        r = control.handle(Request("unlock", "sms", f"+4470000{i:04d}", "sms:x", "123456"))
        assert not r.ok and not r.answer
    reasons = [a[1] for a in door.audits]
    assert reasons == ["unknown_principal"] * 5 + ["rate_limited"]
    tclock.advance(61)
    control.handle(Request("unlock", "sms", "+447000009999", "sms:x", "123456"))
    assert [a[1] for a in door.audits][-1] == "unknown_principal"
