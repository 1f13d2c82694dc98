"""Owns the one-time codes of remote control: TOTP (RFC 6238, an authenticator app) and
HMAC-signed commands (timestamp + nonce), each usable exactly once, checked in the database.

A TOTP code is accepted only for a time step later than the last one accepted for that
principal (`remote_principals.last_step`, moved by one conditional UPDATE, so two processes or
a replay racing the original cannot both win). A signed command is accepted only within
`max_skew_s` of the door's clock and with a nonce not seen before (`remote_nonces`, primary
key). A code is marked used *before* the command acts: a crash in between costs the owner a
fresh code, never a second use of the old one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError

from appliance.security import PinHasher
from appliance.store.db import Database
from appliance.store.models_remote import RemoteNonce, RemotePrincipal

TOTP_STEP_S = 30
TOTP_DIGITS = 6
TOTP_WINDOW = 1  # steps either side of now (an app's clock a little off, a slow SMS)
ISSUER = "Doorward"
_CODE_RE = re.compile(r"^[0-9]{6}$")  # not \d: it takes Arabic-Indic and fullwidth digits
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def new_label() -> str:
    """A fresh random label for a principal (its secret is derived from it)."""
    return secrets.token_hex(16)


def totp_secret(hasher: PinHasher, label: str) -> str:
    """The principal's TOTP secret, base32 as authenticator apps take it (160 bits)."""
    return base64.b32encode(hasher.derive(f"totp:{label}")[:20]).decode("ascii")


def hmac_key(hasher: PinHasher, label: str) -> bytes:
    """The principal's key for signed commands (shown once, hex, on the admin page)."""
    return hasher.derive(f"hmac:{label}")


def provisioning_uri(hasher: PinHasher, label: str, name: str, door: str) -> str:
    import pyotp

    return pyotp.TOTP(totp_secret(hasher, label)).provisioning_uri(
        name=f"{door}:{name}", issuer_name=ISSUER
    )


def sign(key: bytes, device_id: str, action: str, ts: int, nonce: str) -> str:
    """The signature a client sends with a signed command (hex HMAC-SHA256)."""
    msg = f"doorward|{device_id}|{action}|{ts}|{nonce}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


@dataclass
class Throttle:
    """At most `limit` attempts per `window_s` per key, and after `fail_limit` failed codes
    within `fail_window_s` the key is refused for `block_s`. The clock is injected."""

    limit: int = 5
    window_s: float = 60.0
    fail_limit: int = 5
    fail_window_s: float = 600.0
    block_s: float = 900.0
    clock: Callable[[], float] = time.monotonic
    _tries: dict[str, deque[float]] = field(default_factory=dict)
    _fails: dict[str, deque[float]] = field(default_factory=dict)
    _blocked_until: dict[str, float] = field(default_factory=dict)

    def allow(self, key: str) -> bool:
        """Count one attempt of `key`; False when it is over the limit or blocked."""
        now = self.clock()
        if self._blocked_until.get(key, float("-inf")) > now:
            return False
        tries = self._tries.setdefault(key, deque())
        while tries and tries[0] <= now - self.window_s:
            tries.popleft()
        if len(tries) >= self.limit:
            return False
        tries.append(now)
        return True

    def failed(self, key: str) -> None:
        now = self.clock()
        fails = self._fails.setdefault(key, deque())
        while fails and fails[0] <= now - self.fail_window_s:
            fails.popleft()
        fails.append(now)
        if len(fails) >= self.fail_limit:
            self._blocked_until[key] = now + self.block_s
            fails.clear()


class CodeBook:
    """Checks one-time codes for principals stored in `db` (the door's local database)."""

    def __init__(
        self,
        db: Database,
        hasher: PinHasher,
        device_id: str,
        *,
        wall_clock: Callable[[], float] = time.time,
        max_skew_s: float = 60.0,
    ) -> None:
        self.db = db
        self.hasher = hasher
        self.device_id = device_id
        self.wall_clock = wall_clock
        self.max_skew_s = max_skew_s

    def use_totp(self, principal: RemotePrincipal, code: str) -> str | None:
        """Accept `code` once; None when accepted, else the reason it was refused."""
        import pyotp

        if not isinstance(code, str) or not _CODE_RE.fullmatch(code):
            return "malformed_code"
        totp = pyotp.TOTP(totp_secret(self.hasher, principal.label))
        now_step = int(self.wall_clock() // TOTP_STEP_S)
        matched = None
        for step in range(now_step - TOTP_WINDOW, now_step + TOTP_WINDOW + 1):
            # bytes: compare_digest raises TypeError on a non-ASCII str
            if hmac.compare_digest(totp.at(step * TOTP_STEP_S).encode(), code.encode()):
                matched = step
        if matched is None:
            return "wrong_code"
        with self.db.session() as s:
            result: Any = s.execute(
                update(RemotePrincipal)
                .where(
                    RemotePrincipal.id == principal.id,
                    or_(RemotePrincipal.last_step.is_(None), RemotePrincipal.last_step < matched),
                )
                .values(last_step=matched)
            )
            moved = result.rowcount
        return None if moved == 1 else "code_already_used"

    def use_signed(
        self, principal: RemotePrincipal, action: str, ts: object, nonce: object, sig: object
    ) -> str | None:
        """Accept a signed command once; None when accepted, else why it was refused."""
        if not isinstance(ts, int) or isinstance(ts, bool):
            return "malformed_signature"
        if not isinstance(nonce, str) or not _NONCE_RE.match(nonce):
            return "malformed_signature"
        if not isinstance(sig, str) or not re.fullmatch(r"[0-9a-f]{64}", sig):
            return "malformed_signature"
        want = sign(hmac_key(self.hasher, principal.label), self.device_id, action, ts, nonce)
        if not hmac.compare_digest(want, sig):
            return "bad_signature"
        now = self.wall_clock()
        if abs(now - ts) > self.max_skew_s:
            return "stale_timestamp"
        expires = datetime.fromtimestamp(ts + self.max_skew_s + 1, UTC)
        try:
            with self.db.session() as s:
                s.execute(
                    delete(RemoteNonce).where(
                        RemoteNonce.expires_at < datetime.fromtimestamp(now, UTC)
                    )
                )
                s.add(RemoteNonce(principal_id=principal.id, nonce=nonce, expires_at=expires))
        except IntegrityError:
            return "nonce_already_used"
        return None


def current_code(hasher: PinHasher, label: str, at: float | None = None) -> str:
    """The TOTP code of `label` now (tests, the admin page's enrolment check)."""
    import pyotp

    return pyotp.TOTP(totp_secret(hasher, label)).at(time.time() if at is None else at)
