"""Owns PIN and password hashing: argon2id, with a device-held pepper (HMAC key) for PINs."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

if TYPE_CHECKING:
    from appliance.config import Config
    from appliance.store.db import Database

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
        if not pin_hash or not (pin.isascii() and pin.isdigit()):  # "١٢٣٤".isdigit() too
            return False
        try:
            return _PIN_HASHER.verify(pin_hash, self._peppered(pin))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def derive(self, label: str) -> bytes:
        """A 32-byte key for `label` under the pepper (HMAC-SHA256, domain-separated): a door's
        offline guest-code key, remote-control secrets. Every door and admin page sharing the
        pepper derives the same key, so it is never stored; the database keeps only labels, so
        a copy of it alone gives no secret."""
        if not self._pepper:
            raise ValueError("no pepper: derived secrets need security.pepper")
        return hmac.new(
            self._pepper, f"doorward derive v1|{label}".encode(), hashlib.sha256
        ).digest()

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


def _env_pepper() -> str:
    from appliance.config import ENV_PEPPER

    return ENV_PEPPER


def _config_error() -> type[Exception]:
    from appliance.config import ConfigError

    return ConfigError


PEPPER_FINGERPRINT_KEY = "pepper_fingerprint"


def pepper_fingerprint(pepper: str) -> str:
    """A short HMAC of a fixed text under the pepper: tells peppers apart, reveals nothing."""
    mac = hmac.new(pepper.encode("utf-8"), b"doorward pepper fingerprint v1", hashlib.sha256)
    return mac.hexdigest()[:16]


def pin_hasher(config: Config, db: Database | None = None) -> PinHasher:
    """The PIN hasher with this installation's pepper (see SecurityConfig.pepper).

    With `db` (the database holding the PIN hashes), the pepper is checked against the
    fingerprint stored there: a missing pepper file is not replaced while PIN hashes exist, and
    a different pepper is refused, each with a ConfigError saying what to restore.
    """
    pepper = config.security.pepper.resolve("security.pepper")
    source = "security.pepper"
    env = _env_pepper()
    if not pepper and os.environ.get(env):
        pepper, source = os.environ[env], f"${env}"
    if not pepper:
        path = config.data_dir / "pepper"
        source = str(path)
        try:
            pepper = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            hashes, stored = _pepper_state(db)
            if hashes:
                raise _config_error()(
                    f"security.pepper: {path} is missing, but {db.url} holds {hashes} PIN "  # type: ignore[union-attr]
                    f"hash(es) made with a pepper (fingerprint {stored or 'not recorded'}). "
                    f"Restore {path} from a backup (or set security.pepper / ${_env_pepper()} to "
                    "that pepper); a new pepper would make every PIN wrong"
                ) from None
            pepper = _device_pepper(path)
    if db is not None:
        _check_fingerprint(db, pepper, source)
    return PinHasher(pepper)


def _pepper_state(db: Database | None) -> tuple[int, str | None]:
    """(PIN hashes in `db`, the stored pepper fingerprint); (0, None) without a database."""
    if db is None:
        return 0, None
    from sqlalchemy import func, select

    from appliance.store.models import User
    from appliance.store.models_sync import SyncState

    with db.session() as s:
        hashes = s.scalar(select(func.count()).select_from(User)) or 0
        row = s.get(SyncState, PEPPER_FINGERPRINT_KEY)
    return hashes, row.value if row is not None and row.value else None


def _check_fingerprint(db: Database, pepper: str, source: str) -> None:
    from appliance.store.models_sync import SyncState

    mine = pepper_fingerprint(pepper)
    _, stored = _pepper_state(db)
    if stored is None:
        with db.session() as s:
            s.merge(SyncState(key=PEPPER_FINGERPRINT_KEY, value=mine))
        return
    if stored != mine:
        raise _config_error()(
            f"security.pepper: the pepper from {source} has fingerprint {mine}, but the PIN "
            f"hashes in {db.url} were made with the pepper of fingerprint {stored}. Restore "
            f"that pepper ({source}, from the backup or from provisioning); doorward will "
            "not start with a pepper that makes every PIN wrong"
        )


def _device_pepper(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value)
        fh.flush()
        os.fsync(fh.fileno())
    return value


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
