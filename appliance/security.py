"""Owns PIN and password hashing: argon2id, with a device-held pepper (HMAC key) for PINs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2id at OWASP's recommended strength. PINs use the equivalent low-memory setting
# (m=7 MiB, t=5, p=1), since every code typed at the door is verified inside the door process;
# admin passwords use the baseline (m=19 MiB, t=2, p=1), the floor the admin issue asks for.
# Hashes made with other parameters still verify; admin passwords are re-hashed at login.
_PIN_HASHER = PasswordHasher(time_cost=5, memory_cost=7 * 1024, parallelism=1)
_PASSWORD_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

PIN_MIN, PIN_MAX = 4, 12


class PinError(ValueError):
    """A PIN that cannot be used; the message says why."""


def validate_pin(pin: str, what: str = "PIN") -> str:
    if not (pin.isascii() and pin.isdigit()):  # "١٢٣٤".isdigit() is True too
        raise PinError(f"{what} must contain only the digits 0-9 (the keypad's), nothing else")
    if not PIN_MIN <= len(pin) <= PIN_MAX:
        raise PinError(f"{what} must be {PIN_MIN} to {PIN_MAX} digits long, got {len(pin)}")
    return pin


class PinHasher:
    """argon2id over HMAC-SHA256(pepper, pin): a stolen database alone cannot be brute-forced."""

    def __init__(self, pepper: str | bytes | None) -> None:
        if isinstance(pepper, str):
            pepper = pepper.encode("utf-8")
        self._pepper = pepper or b""

    def _peppered(self, pin: str) -> bytes:
        if not self._pepper:
            return pin.encode("ascii")
        return hmac.new(self._pepper, pin.encode("ascii"), hashlib.sha256).digest()

    def hash(self, pin: str) -> str:
        validate_pin(pin)
        return _PIN_HASHER.hash(self._peppered(pin))

    def verify(self, pin_hash: str | None, pin: str) -> bool:
        if not pin_hash or not pin.isdigit():
            return False
        try:
            return _PIN_HASHER.verify(pin_hash, self._peppered(pin))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def burn(self) -> None:
        """Spend the time of one verification, so an unknown user number is not faster to reject."""
        self.verify(_DUMMY_HASH, "0000")


_DUMMY_HASH = _PIN_HASHER.hash(secrets.token_bytes(16))


def hash_password(password: str) -> str:
    return _PASSWORD_HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _PASSWORD_HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _PASSWORD_HASHER.check_needs_rehash(password_hash)


PRIVATE_UMASK = 0o077


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) as 0700, and tighten it to 0700 if it exists and is ours:
    the data directory holds the database, its WAL, snapshots, enrollment photos and the
    mailbox, none of which anyone else on the machine may read."""
    import os

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.stat()
    if st.st_uid == os.getuid() and st.st_mode & 0o077:
        path.chmod(0o700)
    return path


def private_umask() -> int:
    """Files and folders this process creates are its owner's only (umask 077); returns the
    previous umask."""
    import os

    return os.umask(PRIVATE_UMASK)
