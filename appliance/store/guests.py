"""Owns guest codes: issuing them (admin page, CLI), listing and revoking, and checking them
at the door from the replica (core.Guests).

Two kinds, told apart by the keypad prefix:
- `0*<slot 4 digits><secret 6 digits>#`: stored. The slot finds the row (like a user number),
  the whole 10 digits are verified against an argon2id hash of HMAC(pepper, code), like a PIN.
  Name, doors, validity window, optional weekly windows, optional number of uses.
- `00*<10 digits>#`: offline. Signed with the door's key (derived from the pepper and the door
  id), verified with no database row at all (core.offline); a revocation (by serial) reaches
  the door with the next sync.

Use counting (stored codes with max_uses): a door counts the uses its replica holds exactly
(guest_uses rows, written with the guest_entry event) and every other use the central database
had at its last sync round (guest_use_totals: other doors' uses, and its own from before its
replica was rebuilt). A code that opens several doors may be spent at most once more by a door
that has not confirmed its previous use of it with the central database (`unconfirmed`), so
while doors cannot reach each other the limit is exceeded by at most the number of doors - 1
(docs/architecture.md has the argument). A code for one door is exact, online or not.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select

from appliance.core import GuestCheck
from appliance.core import offline as oc
from appliance.security import PinHasher

from .db import Database
from .models import utcnow
from .models_policies import GuestCode, GuestUse, GuestUseTotal
from .models_sync import access_allows

log = logging.getLogger(__name__)

GUEST_KEYS = "0*"
OFFLINE_KEYS = "00*"
SLOTS = 10_000
SECRET_DIGITS = 6
NAME_MAX = 128


class GuestError(ValueError):
    """A guest code cannot be issued or changed as asked; the message names the option."""


def offline_key(hasher: PinHasher, device_id: str) -> bytes:
    """The door's offline-code key: HMAC(pepper, label + door id). Per door, never stored."""
    return hasher.derive(f"doorward offline guest code key v1|{device_id}")


def local_today(now: datetime, tz: tzinfo | None) -> date:
    return now.astimezone(tz).date()


# ---- issuing ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Issued:
    code: GuestCode
    keys: str  # exactly what to type on the keypad; shown once, never stored

    def as_dict(self) -> dict[str, Any]:
        return {**self.code.as_dict(), "keys": self.keys}


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise GuestError("--name: a guest code needs a name (who it is for)")
    if len(name) > NAME_MAX:
        raise GuestError(f"--name: at most {NAME_MAX} characters, got {len(name)}")
    return name


def _check_window(valid_from: datetime | None, valid_until: datetime | None) -> None:
    for what, value in (("--from", valid_from), ("--until", valid_until)):
        if value is not None and value.tzinfo is None:
            raise GuestError(f"{what}: give a time zone (e.g. 2026-12-24T09:00+01:00)")
    if valid_from and valid_until and valid_until <= valid_from:
        raise GuestError("--until: must be after --from")
    if valid_until is not None and valid_until <= utcnow():
        raise GuestError(f"--until: {valid_until.isoformat()} is already past")


def _check_windows(windows: Sequence[Sequence[int]] | None) -> list[list[int]] | None:
    if not windows:
        return None
    from appliance.core.schedule import validate_window

    out = []
    for w in windows:
        if len(w) != 3:
            raise GuestError("windows: each is [weekdays mask, start minute, end minute]")
        try:
            validate_window(int(w[0]), int(w[1]), int(w[2]))
        except ValueError as exc:
            raise GuestError(f"windows: {exc}") from None
        out.append([int(w[0]), int(w[1]), int(w[2])])
    return out


def create_guest_code(
    db: Database,
    hasher: PinHasher,
    *,
    name: str,
    doors: Sequence[str] | None = None,
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
    windows: Sequence[Sequence[int]] | None = None,
    max_uses: int | None = None,
    by: str = "",
) -> Issued:
    """A new stored guest code; its keys are returned once and only its hash is kept."""
    name = _check_name(name)
    _check_window(valid_from, valid_until)
    if max_uses is not None and max_uses < 1:
        raise GuestError(f"--uses: must be 1 or more, got {max_uses}")
    wins = _check_windows(windows)
    now = utcnow()
    with db.session() as s:
        live = set(
            s.scalars(
                select(GuestCode.slot).where(
                    GuestCode.kind == "code",
                    GuestCode.revoked_at.is_(None),
                    (GuestCode.valid_until.is_(None)) | (GuestCode.valid_until > now),
                )
            )
        )
        if len(live) >= SLOTS // 2:
            raise GuestError("too many live guest codes: revoke some first")
        slot = secrets.randbelow(SLOTS)
        while slot in live:
            slot = secrets.randbelow(SLOTS)
        code = f"{slot:04d}{secrets.randbelow(10**SECRET_DIGITS):0{SECRET_DIGITS}d}"
        row = GuestCode(
            name=name,
            kind="code",
            slot=slot,
            code_hash=hasher.hash(code),
            doors=list(doors) if doors else None,
            valid_from=valid_from,
            valid_until=valid_until,
            windows=wins,
            max_uses=max_uses,
            created_by=by,
        )
        s.add(row)
        s.flush()
        s.expunge(row)
    log.info("event=guest_code_created id=%s name=%r by=%s", row.id, name, by)
    return Issued(row, f"{GUEST_KEYS}{code}#")


def create_offline_code(
    db: Database,
    hasher: PinHasher,
    *,
    name: str,
    door: str,
    first: date,
    last: date,
    today: date,
    by: str = "",
) -> Issued:
    """A new offline code for `door`, valid on the local days first..last (inclusive)."""
    name = _check_name(name)
    if not door:
        raise GuestError("--door: an offline code is signed for one door; name it")
    with db.session() as s:
        taken = {
            serial
            for serial, doors in s.execute(
                select(GuestCode.serial, GuestCode.doors).where(
                    GuestCode.kind == "offline",
                    GuestCode.first_day.is_not(None),
                    GuestCode.first_day + GuestCode.days > oc.day_number(today),
                )
            )
            if doors == [door]
        }
        free = [n for n in range(oc.SERIALS) if n not in taken]
        if not free:
            raise GuestError(
                f"--door: {door} already has {oc.SERIALS} offline codes still valid "
                "(revoked ones included until they expire)"
            )
        try:
            digits = oc.issue(offline_key(hasher, door), free[0], first, last, today)
        except oc.OfflineCodeError as exc:
            raise GuestError(str(exc)) from None
        days = (last - first).days + 1
        row = GuestCode(
            name=name,
            kind="offline",
            doors=[door],
            serial=free[0],
            first_day=oc.day_number(first),
            days=days,
            valid_from=datetime.combine(first, datetime.min.time()).astimezone().astimezone(UTC),
            valid_until=datetime.combine(last + timedelta(days=1), datetime.min.time())
            .astimezone()
            .astimezone(UTC),
            created_by=by,
        )
        s.add(row)
        s.flush()
        s.expunge(row)
    log.info("event=offline_code_created id=%s door=%s serial=%d by=%s", row.id, door,
             free[0], by)  # fmt: skip
    return Issued(row, f"{OFFLINE_KEYS}{digits}#")


def revoke(db: Database, code_id: int, by: str = "") -> GuestCode:
    with db.session() as s:
        row = s.get(GuestCode, code_id)
        if row is None:
            raise GuestError(f"ID: no guest code {code_id}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        s.flush()
        s.expunge(row)
    log.info("event=guest_code_revoked id=%s by=%s", code_id, by)
    return row


def list_codes(db: Database, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every guest code with its uses (all doors), and whether the limit was exceeded."""
    now = now or utcnow()
    with db.session() as s:
        rows = list(s.scalars(select(GuestCode).order_by(GuestCode.id)))
        per_door: dict[int, dict[str, int]] = {}
        for gid, dev, n in s.execute(
            select(GuestUse.guest_code_id, GuestUse.device_id, func.count())
            .where(GuestUse.guest_code_id.is_not(None))
            .group_by(GuestUse.guest_code_id, GuestUse.device_id)
        ):
            if gid is not None:
                per_door.setdefault(gid, {})[dev] = int(n)
        uses = {gid: sum(by.values()) for gid, by in per_door.items()}
        out = []
        for r in rows:
            d = r.as_dict()
            used = uses.get(r.id, 0)
            d["uses"] = used
            d["uses_by_door"] = per_door.get(r.id, {})
            d["over_limit"] = max(0, used - r.max_uses) if r.max_uses else 0
            d["state"] = _state(r, now, used)
            out.append(d)
    return out


def _state(r: GuestCode, now: datetime, used: int) -> str:
    if r.revoked_at is not None:
        return "revoked"
    if r.valid_until is not None and now >= r.valid_until:
        return "expired"
    if r.max_uses is not None and used >= r.max_uses:
        return "used_up"
    if r.valid_from is not None and now < r.valid_from:
        return "not_yet_valid"
    return "active"


# ---- checking at the door ---------------------------------------------------------------------
class ReplicaGuests:
    """core.Guests on the door's replica. Every check costs two argon2 runs (one verification
    and one burn, or two burns), like a user's code, whatever the outcome."""

    def __init__(
        self,
        db: Database,
        hasher: PinHasher,
        device_id: str,
        *,
        now: Callable[[], datetime] = utcnow,
        tz: tzinfo | None = None,
        synced: bool = False,
        pending_uses: Callable[[int], int] | None = None,
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._device_id = device_id
        self._key = offline_key(hasher, device_id)
        self._now = now
        self._tz = tz
        self._synced = synced  # a central database exists: other doors may spend codes too
        self._pending = pending_uses or (lambda _gid: 0)

    def check_code(self, digits: str) -> GuestCheck:
        if len(digits) != 4 + SECRET_DIGITS or not (digits.isascii() and digits.isdigit()):
            self._hasher.burn()
            self._hasher.burn()
            return GuestCheck(False, "wrong")
        now = self._now()
        with self._db.session() as s:
            row = s.scalars(
                select(GuestCode)
                .where(
                    GuestCode.kind == "code",
                    GuestCode.slot == int(digits[:4]),
                    (GuestCode.valid_until.is_(None))
                    | (GuestCode.valid_until > now - timedelta(days=1)),
                )
                .order_by(GuestCode.revoked_at.is_not(None), GuestCode.id.desc())
                .limit(1)
            ).first()
            if row is None:
                self._hasher.burn()
                self._hasher.burn()
                return GuestCheck(False, "wrong")
            right = self._hasher.verify(row.code_hash, digits)
            self._hasher.burn()
            if not right:
                return GuestCheck(False, "wrong")
            reason = self._refusal(s, row, now)
        check = GuestCheck(reason is None, reason or "ok", row.id, row.name)
        if reason is not None:
            log.info("event=guest_code_refused id=%s reason=%s", row.id, reason)
        return check

    def _refusal(self, s: Any, row: GuestCode, now: datetime) -> str | None:
        if row.revoked_at is not None:
            return "revoked"
        if not row.opens(self._device_id):
            return "door"
        if row.valid_from is not None and now < row.valid_from:
            return "not_yet_valid"
        if row.valid_until is not None and now >= row.valid_until:
            return "expired"
        if row.windows:
            local = now.astimezone(self._tz)
            if not any(access_allows(None, w[0], w[1], w[2], None, local) for w in row.windows):
                return "schedule"
        if row.max_uses is None:
            return None
        own = s.scalar(
            select(func.count())
            .select_from(GuestUse)
            .where(GuestUse.guest_code_id == row.id, GuestUse.device_id == self._device_id)
        )
        pending = self._pending(row.id)
        others = s.scalar(select(GuestUseTotal.others).where(GuestUseTotal.guest_code_id == row.id))
        if (own or 0) + pending + (others or 0) >= row.max_uses:
            return "used_up"
        several = row.doors is None or len(row.doors) > 1
        if self._synced and several:
            unconfirmed = s.scalar(
                select(func.count())
                .select_from(GuestUse)
                .where(
                    GuestUse.guest_code_id == row.id,
                    GuestUse.device_id == self._device_id,
                    GuestUse.confirmed_at.is_(None),
                )
            )
            if (unconfirmed or 0) + pending >= 1:
                return "unconfirmed"
        return None

    def check_offline(self, digits: str) -> GuestCheck:
        self._hasher.burn()  # the same time as any other code: two argon2 runs
        self._hasher.burn()
        today = local_today(self._now(), self._tz)
        v = oc.verify(self._key, digits, today)
        if v.code is None:
            return GuestCheck(False, v.reason)
        serial = v.code.serial
        with self._db.session() as s:
            row = s.scalars(
                select(GuestCode).where(
                    GuestCode.kind == "offline",
                    GuestCode.serial == serial,
                    GuestCode.first_day == v.code.start_day,
                    GuestCode.days == v.code.days,
                )
            ).first()
            known = None if row is None or not row.opens(self._device_id) else row
        gid = known.id if known else None
        name = known.name if known else f"offline code #{serial}"
        if v.reason != "ok":
            return GuestCheck(False, v.reason, gid, name, serial)
        if known is not None and known.revoked_at is not None:
            log.info("event=offline_code_refused serial=%d reason=revoked", serial)
            return GuestCheck(False, "revoked", gid, name, serial)
        return GuestCheck(True, "ok", gid, name, serial)
