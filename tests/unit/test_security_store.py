"""PIN hashing with pepper, the replica's code check, templates cache, event+outbox atomicity."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.core import Verdict
from appliance.security import PinError, PinHasher, hash_password, verify_password
from appliance.store.models import FaceTemplate, User
from appliance.store.repository import ReplicaCredentials, TemplateCache


def test_pin_hash_is_argon2id_and_depends_on_the_pepper() -> None:
    a, b = PinHasher("pepper-a"), PinHasher("pepper-b")
    h = a.hash("1234")
    assert h.startswith("$argon2id$v=19$m=7168,t=5,p=1$") and "1234" not in h
    assert a.verify(h, "1234") and not a.verify(h, "1235")
    assert not b.verify(h, "1234")  # a stolen database without the device's pepper is useless


@pytest.mark.parametrize("pin", ["12", "12a4", "1234567890123", ""])
def test_bad_pins_are_refused(pin: str) -> None:
    with pytest.raises(PinError):
        PinHasher("p").hash(pin)


@pytest.mark.parametrize("pepper", ["pepper", ""])
@pytest.mark.parametrize(
    "pin", ["\u0661\u0662\u0663\u0664", "\uff11\uff12\uff13\uff14", "12\u00b34"]
)
def test_verify_refuses_digits_other_than_0_to_9(pepper: str, pin: str) -> None:
    """Arabic-Indic, full-width and superscript digits pass str.isdigit(): verify answers False
    for them (never UnicodeEncodeError), with a pepper and without."""
    hasher = PinHasher(pepper)
    assert hasher.verify(hasher.hash("1234"), pin) is False


def test_admin_password_hash() -> None:
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")  # the floor: m=19 MiB, t=2, p=1
    assert verify_password(h, "correct horse") and not verify_password(h, "wrong")


def test_replica_credentials(db) -> None:
    hasher = PinHasher("p")
    with db.session() as s:
        s.add(User(number=5, name="A", pin_hash=hasher.hash("1111"),
                   duress_pin_hash=hasher.hash("9999")))  # fmt: skip
        s.add(User(number=6, name="B", pin_hash=hasher.hash("2222"), active=False))
    creds = ReplicaCredentials(db, hasher)
    assert creds.check(5, "1111").verdict is Verdict.OK
    assert creds.check(5, "9999").verdict is Verdict.DURESS
    assert creds.check(5, "0000").verdict is Verdict.WRONG
    assert creds.check(6, "2222").verdict is Verdict.WRONG  # deactivated
    assert creds.check(77, "1111").verdict is Verdict.WRONG  # unknown


def test_template_cache_reloads_after_enrollment(db) -> None:
    cache = TemplateCache(db)
    assert cache.for_user(1).shape == (0, 128)
    vec = np.linspace(-0.2, 0.2, 128)
    with db.session() as s:
        u = User(number=1, name="A", pin_hash="x")
        u.templates = [FaceTemplate(encoding=FaceTemplate.pack(vec), quality=1.0)]
        s.add(u)
    got = cache.for_user(u.id)
    assert got.shape == (1, 128) and np.allclose(got[0], vec, atol=1e-6)
    with pytest.raises(ValueError, match="128 values"):
        FaceTemplate.pack(np.zeros(64))
