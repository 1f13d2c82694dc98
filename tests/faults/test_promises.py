"""Promises 4 and 9: duress cannot be told apart; bad config and untypeable codes are refused."""

from __future__ import annotations

import math
import typing
from pathlib import Path
from typing import Any

import pytest

from appliance.config import Config, ConfigError, parse_config
from appliance.config.base import Delay, Seconds, _section_type
from appliance.core import AccessController, CheckFace, KeyPressed, Policy, Record, Signal
from appliance.core.events import Feedback
from appliance.enroll import EnrollError, check_pin_change, validate_user_fields
from appliance.security import PinHasher
from appliance.store.central import open_local_replica
from appliance.store.repository import ReplicaCredentials

from .doubles import add_user, make_config


class CountingHasher(PinHasher):
    """Counts argon2 verifications (burn() is one too): the work a check costs."""

    def __init__(self) -> None:
        super().__init__("pepper")
        self.runs = 0

    def verify(self, pin_hash, pin):
        self.runs += 1
        return super().verify(pin_hash, pin)


@pytest.fixture
def creds(tmp_path: Path):
    config = make_config(tmp_path / "var")
    db = open_local_replica(config)
    hasher = CountingHasher()
    add_user(db, hasher, 1, "1234", duress="9999")
    add_user(db, hasher, 2, "1234")
    yield ReplicaCredentials(db, hasher), hasher
    db.close()


@pytest.mark.parametrize(
    "number, pin, verdict",
    [(1, "0000", "wrong"), (1, "1234", "ok"), (1, "9999", "duress"), (2, "0000", "wrong"),
     (2, "1234", "ok"), (3, "1234", "wrong")],
)  # fmt: skip
def test_every_code_check_costs_the_same_work(creds, number, pin, verdict) -> None:
    """Constant work per code: two argon2 verifications whether the PIN is right, wrong or the
    duress PIN, whether the user has a duress PIN, and whether the user exists."""
    credentials, hasher = creds
    hasher.runs = 0
    assert credentials.check(number, pin).verdict.value == verdict
    assert hasher.runs == 2


def test_every_guest_code_check_costs_the_same_work_too(tmp_path: Path) -> None:
    """Guest codes (stored and offline) cost the same two argon2 runs as a user's code, right,
    wrong, unknown slot, malformed, revoked or used up."""
    from datetime import date

    from appliance.core import offline as oc
    from appliance.store.guests import (
        ReplicaGuests,
        create_guest_code,
        offline_key,
        revoke,
    )

    config = make_config(tmp_path / "var")
    db = open_local_replica(config)
    hasher = CountingHasher()
    try:
        good = create_guest_code(db, hasher, name="G", max_uses=1).keys[2:12]
        gone = create_guest_code(db, hasher, name="R")
        revoke(db, gone.code.id)
        guests = ReplicaGuests(db, hasher, config.device.id)
        today = date.today()
        signed = oc.issue(offline_key(hasher, config.device.id), 1, today, today, today)
        wrong_slot = f"{(int(good[:4]) + 1) % 10_000:04d}{good[4:]}"
        cases = [
            (guests.check_code, good, "ok"),
            (guests.check_code, good[:4] + "000000", "wrong"),
            (guests.check_code, wrong_slot, "wrong"),
            (guests.check_code, "12", "wrong"),
            (guests.check_code, gone.keys[2:12], "revoked"),
            (guests.check_offline, signed, "ok"),
            (guests.check_offline, "0000000001", "wrong"),
        ]
        for check, digits, reason in cases:
            hasher.runs = 0
            assert check(digits).reason == reason, (digits, reason)
            assert hasher.runs == 2, (digits, reason, hasher.runs)
    finally:
        db.close()


def test_a_pin_equal_to_the_duress_pin_still_raises_duress(tmp_path: Path) -> None:
    """If PIN and duress PIN ever end up equal (an edit made straight in the central
    database), the code counts as duress: the silent alert is never disabled."""
    config = make_config(tmp_path / "var")
    db = open_local_replica(config)
    hasher = PinHasher("pepper")
    add_user(db, hasher, 5, "4321", duress="4321")
    try:
        assert ReplicaCredentials(db, hasher).check(5, "4321").verdict.value == "duress"
    finally:
        db.close()


def test_duress_feedback_comes_before_its_record() -> None:
    """The duress record (snapshot, alert) is off the feedback path: the WORKING signal is
    issued before it, exactly where a normal code has it."""

    class Creds:
        def check(self, number, pin):
            from appliance.core import CodeCheck, Verdict

            return CodeCheck(Verdict.DURESS if pin == "9999" else Verdict.OK, 1)

    def run(code: str) -> list:
        m = AccessController(Policy(), Creds(), lambda: 100.0)
        out = []
        for k in code:
            out = m.handle(KeyPressed(k))
        return out

    duress, normal = run("1*9999#"), run("1*1234#")
    working = [i for i, c in enumerate(duress) if c == Signal(Feedback.WORKING)]
    record = [i for i, c in enumerate(duress) if isinstance(c, Record) and c.kind == "duress"]
    assert working and record and working[0] < record[0]
    assert [c for c in duress if not isinstance(c, Record)] == normal
    assert any(isinstance(c, CheckFace) for c in duress)


def test_an_edit_cannot_make_pin_and_duress_pin_equal() -> None:
    """The shared update check (used by the admin page) refuses a new PIN equal to the kept
    duress PIN, a new duress PIN equal to the kept PIN, and equal new ones."""
    h = PinHasher("pepper")
    pin_hash, duress_hash = h.hash("1234"), h.hash("9999")
    with pytest.raises(EnrollError, match="duress PIN"):
        check_pin_change(h, pin="9999", duress_pin=None, pin_hash=pin_hash,
                         duress_pin_hash=duress_hash)  # fmt: skip
    with pytest.raises(EnrollError, match="user's PIN"):
        check_pin_change(h, pin=None, duress_pin="1234", pin_hash=pin_hash,
                         duress_pin_hash=duress_hash)  # fmt: skip
    with pytest.raises(EnrollError, match="differ"):
        check_pin_change(h, pin="5555", duress_pin="5555", pin_hash=pin_hash,
                         duress_pin_hash=duress_hash)  # fmt: skip
    check_pin_change(h, pin="5555", duress_pin=None, pin_hash=pin_hash,
                     duress_pin_hash=duress_hash)  # fmt: skip


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("key", ["access.lockout_s", "alerts.give_up_after_s",
                                 "access.entry_grace_s", "database.io_timeout_s"])  # fmt: skip
def test_durations_must_be_finite(key: str, value: float) -> None:
    """inf and nan are refused for every duration, by a message naming the key."""
    section, name = key.split(".")
    with pytest.raises(ConfigError) as err:
        parse_config({section: {name: value}})
    assert key in str(err.value) and "finite" in str(err.value)


def _duration_keys(cls: type, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every duration key of the config (fields typed Seconds or Delay, in nested sections
    too), found from the structs themselves so that a new duration is covered unasked."""
    hints = typing.get_type_hints(cls, include_extras=True)
    keys: list[tuple[str, ...]] = []
    for name in cls.__struct_fields__:
        typ = hints[name]
        sub = _section_type(typ)
        if sub is not None:
            keys += _duration_keys(sub, (*prefix, name))
        elif any(t in (Seconds, Delay) for t in (typ, *typing.get_args(typ))):
            keys.append((*prefix, name))
    return keys


def _nested(key: tuple[str, ...], value: float) -> dict[str, Any]:
    data: Any = value
    for part in reversed(key):
        data = {part: data}
    return data


DURATION_KEYS = _duration_keys(Config)


def test_every_duration_key_is_found() -> None:
    """The walk below sees the durations of every section, nested ones included."""
    found = {".".join(k) for k in DURATION_KEYS}
    assert {"access.lockout_s", "alerts.email.timeout_s", "remote.block_s"} <= found
    assert len(found) >= 30


@pytest.mark.parametrize("key", DURATION_KEYS, ids=".".join)
def test_durations_are_at_most_30_days(key: tuple[str, ...]) -> None:
    """30 days is accepted for every duration; a second more is refused, naming the key (a
    year typed for a day, or ms for s, would otherwise hold a lockout or a session for it)."""
    name = ".".join(key)
    try:
        parse_config(_nested(key, 30 * 86400.0))
    except ConfigError as err:  # a nested section may miss its required keys: not this one
        assert name not in str(err)
    with pytest.raises(ConfigError) as err:
        parse_config(_nested(key, 30 * 86400.0 + 1))
    assert name in str(err.value)


def test_the_keypad_takes_the_longest_code_enrollment_accepts(tmp_path: Path) -> None:
    """By default the keypad buffer takes a 9-digit number, '*' and a 12-digit PIN; with a
    shorter access.max_code_length enrollment refuses what the keypad could not take."""
    config = make_config(tmp_path / "var")
    assert config.access.max_code_length >= 9 + 1 + 12
    db = open_local_replica(config)
    try:
        validate_user_fields(db, number=123456789, name="A", pin="123456789012")
        with pytest.raises(EnrollError, match="22 keys.*at most 16"):
            validate_user_fields(db, number=123456789, name="A", pin="123456789012",
                                 max_code_length=16)  # fmt: skip
    finally:
        db.close()
    with pytest.raises(ConfigError, match="max_code_length"):
        parse_config({"access": {"max_code_length": 5}})


def test_a_22_key_code_reaches_the_code_check() -> None:
    """The longest code enrollment accepts is not cleared by the keypad buffer on the way."""
    seen = []

    class Creds:
        def check(self, number, pin):
            from appliance.core import CodeCheck, Verdict

            seen.append((number, pin))
            return CodeCheck(Verdict.WRONG)

    m = AccessController(Policy(), Creds(), lambda: 100.0)
    for k in "123456789*123456789012#":
        m.handle(KeyPressed(k))
    assert seen == [(123456789, "123456789012")]
