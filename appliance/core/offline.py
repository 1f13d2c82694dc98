"""Owns offline-verifiable guest codes: 10 digits a door checks with its own key, no sync.

A code proves who issued it (the door's key), for which door (the key is per door), which
days it is valid and its serial (so that a revocation can name it). Layout of the 10 digits,
read as one integer N < 10**10 (mixed radix, tag in the low part):

    N       = payload * TAGS + tag
    payload = (serial * CYCLE_DAYS + start_day % CYCLE_DAYS) * MAX_DAYS + (days - 1)
    tag     = HMAC-SHA256(key, "v1|serial|start_day|days")[:8] as an integer, mod TAGS

- serial    0..SERIALS-1, unique among a door's offline codes that are still valid (the issuer
            reuses a serial only after the code that had it expired);
- start_day the first valid day, counted in the door's local calendar from 1970-01-01; only
            its value mod CYCLE_DAYS travels, the door takes the latest such day not after
            today (the tag covers the full day, so a code never comes back a cycle later);
- days      1..MAX_DAYS valid days from start_day (today only = 1).

An attacker who types a made-up code chooses serial, start and days freely, so only the tag
protects the door: one attempt succeeds with probability 1/TAGS (6.3e-6). The door's lockout
rules for offline codes (core Policy.offline_fail_*) bound the attempts; docs/architecture.md
has the figures. Pure: the key is handed in by the host (store.guests.offline_key).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, timedelta

DIGITS = 10
SERIALS = 32
CYCLE_DAYS = 64
MAX_DAYS = 31
PAYLOADS = SERIALS * CYCLE_DAYS * MAX_DAYS  # 63,488
TAGS: int = 10_000_000_000 // PAYLOADS  # 157,510: one random code in TAGS is accepted
EPOCH = date(1970, 1, 1)
GUESS_PROBABILITY = 1 / TAGS


class OfflineCodeError(ValueError):
    """Values an offline code cannot carry; the message names the option."""


@dataclass(frozen=True)
class OfflineCode:
    serial: int
    start_day: int  # days since 1970-01-01, the door's local calendar
    days: int

    @property
    def first(self) -> date:
        return EPOCH + timedelta(days=self.start_day)

    @property
    def last(self) -> date:
        """The last valid day (inclusive)."""
        return EPOCH + timedelta(days=self.start_day + self.days - 1)

    def valid_on(self, day: int) -> bool:
        return self.start_day <= day < self.start_day + self.days


def day_number(d: date) -> int:
    return (d - EPOCH).days


def _tag(key: bytes, serial: int, start_day: int, days: int) -> int:
    mac = hmac.new(key, f"v1|{serial}|{start_day}|{days}".encode("ascii"), hashlib.sha256)
    digest: bytes = mac.digest()
    return int.from_bytes(digest[:8], "big") % TAGS


def issue(key: bytes, serial: int, first: date, last: date, today: date) -> str:
    """The 10 digits for a code valid from `first` to `last` (inclusive, local days)."""
    if not 0 <= serial < SERIALS:
        raise OfflineCodeError(f"serial: must be 0 to {SERIALS - 1}, got {serial}")
    days = (last - first).days + 1
    if days < 1:
        raise OfflineCodeError("--until: the last valid day is before the first (--from)")
    if days > MAX_DAYS:
        raise OfflineCodeError(
            f"--until: an offline code is valid for at most {MAX_DAYS} days, got {days}"
        )
    if last < today:
        raise OfflineCodeError(f"--until: {last.isoformat()} is already past")
    if (first - today).days >= CYCLE_DAYS:
        raise OfflineCodeError(
            f"--from: an offline code must start within {CYCLE_DAYS - 1} days of today, "
            f"got {first.isoformat()}"
        )
    start = day_number(first)
    payload = (serial * CYCLE_DAYS + start % CYCLE_DAYS) * MAX_DAYS + (days - 1)
    return f"{payload * TAGS + _tag(key, serial, start, days):0{DIGITS}d}"


@dataclass(frozen=True)
class Verified:
    """What the door learnt from typed digits: `code` is None unless the tag is right."""

    code: OfflineCode | None
    reason: str  # ok | wrong | expired | not_yet_valid


def verify(key: bytes, digits: str, today: date) -> Verified:
    """Check typed digits against the door's key on the door's local `today`."""
    if len(digits) != DIGITS or not (digits.isascii() and digits.isdigit()):
        return Verified(None, "wrong")
    n = int(digits)
    payload, tag = divmod(n, TAGS)
    if payload >= PAYLOADS:
        return Verified(None, "wrong")
    rest, days_m1 = divmod(payload, MAX_DAYS)
    serial, start_mod = divmod(rest, CYCLE_DAYS)
    days = days_m1 + 1
    t = day_number(today)
    latest = t - (t - start_mod) % CYCLE_DAYS  # the latest start day <= today in its class
    # the candidate that may grant, then (only to say why it is refused) the next cycle's
    for start, when_right in ((latest, None), (latest + CYCLE_DAYS, "not_yet_valid")):
        if hmac.compare_digest(str(_tag(key, serial, start, days)), str(tag)):
            code = OfflineCode(serial, start, days)
            if when_right is not None:
                return Verified(code, when_right)
            return Verified(code, "ok" if code.valid_on(t) else "expired")
    return Verified(None, "wrong")
