"""Owns what the door reads from its local replica: code checks and cached face templates."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import Any

import numpy as np
from sqlalchemy import func, select

from appliance.core import CodeCheck, Verdict
from appliance.security import PinHasher

from .db import Database
from .models import FaceTemplate, User, utcnow
from .models_sync import SyncSeq, UserAccess, access_allows

log = logging.getLogger(__name__)

ADMIN_ROLE = "admin"  # users.role of the people a lockdown still lets in


class ReplicaCredentials:
    """core.Credentials on the local replica: argon2id PIN (and duress PIN) per user number.

    Every check costs two argon2 verifications whatever the outcome: the PIN and the duress
    PIN (a dummy hash where the user has none, two dummies for an unknown, inactive,
    out-of-window user or one whose access rules do not admit this door now), so timing tells
    neither which user numbers exist, nor who has a duress PIN, nor which PIN was typed.
    One indexed query per check (users.number, then user_access.user_id).
    """

    def __init__(
        self,
        db: Database,
        hasher: PinHasher,
        now: Callable[[], datetime] = utcnow,
        *,
        device_id: str | None = None,
        tz: tzinfo | None = None,
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._now = now
        self._device_id = device_id
        self._tz = tz  # None: the door's system time zone

    def check(self, user_number: int, pin: str) -> CodeCheck:
        ua = UserAccess
        query = (
            select(
                User.id,
                User.pin_hash,
                User.duress_pin_hash,
                User.active,
                User.valid_from,
                User.valid_until,
                ua.id,
                ua.device_id,
                ua.weekdays,
                ua.start_minute,
                ua.end_minute,
                User.role,
            )
            .outerjoin(ua, ua.user_id == User.id)
            .where(User.number == user_number)
        )
        with self._db.session() as s:
            rows = s.execute(query).all()
        now = self._now()
        refusal = _refusal(rows, now, self._device_id, self._tz)
        if refusal is not None:
            if refusal != "unknown":
                log.info("event=code_refused user=%d reason=%s", user_number, refusal)
            self._hasher.burn()
            self._hasher.burn()
            return CodeCheck(Verdict.WRONG)
        user_id, pin_hash, duress_hash = rows[0][0], rows[0][1], rows[0][2]
        admin = rows[0][11] == ADMIN_ROLE  # the only codes a lockdown lets in
        # constant work: both hashes are always verified (a dummy where there is no duress
        # PIN), so the time of a check tells neither the verdict nor who has a duress PIN
        normal = self._hasher.verify(pin_hash, pin)
        if duress_hash:
            duress = self._hasher.verify(duress_hash, pin)
        else:
            self._hasher.burn()
            duress = False
        if duress:
            if normal:  # equal PIN and duress PIN (e.g. edited centrally): duress wins
                log.error("event=pin_equals_duress user=%d", user_number)
            return CodeCheck(Verdict.DURESS, user_id, admin=admin)
        if normal:
            return CodeCheck(Verdict.OK, user_id, admin=admin)
        return CodeCheck(Verdict.WRONG)


def _refusal(
    rows: Sequence[Any], now: datetime, device_id: str | None, tz: tzinfo | None
) -> str | None:
    """Why the user in `rows` may not enter now (None: they may, if the PIN is right)."""
    if not rows:
        return "unknown"
    _, _, _, active, valid_from, valid_until = rows[0][:6]
    if not active:
        return "inactive"
    if valid_from is not None and now < valid_from:
        return "not_yet_valid"
    if valid_until is not None and now >= valid_until:
        return "expired"
    rules = [r[7:11] for r in rows if r[6] is not None]
    if not rules:
        return None  # no rules: every door, any time
    local = now.astimezone(tz)
    if any(access_allows(r[0], r[1], r[2], r[3], device_id, local) for r in rules):
        return None
    return "schedule"


class TemplateCache:
    """Every user's face templates as float arrays, reloaded only when the templates change.

    The change stamp is the database's change sequence (bumped by every ORM write to a synced
    table, and set by the sync worker after each applied batch) plus count and highest id, so
    a replaced, edited or deleted template is noticed as well as an added one.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._mutex = threading.Lock()
        self._stamp: tuple[int, int, int | None] | None = None
        self._by_user: dict[int, np.ndarray] = {}

    def _current_stamp(self) -> tuple[int, int, int | None]:
        seq = select(SyncSeq.value).where(SyncSeq.id == 1).scalar_subquery()
        with self._db.session() as s:
            version, count, max_id = s.execute(
                select(seq, func.count(FaceTemplate.id), func.max(FaceTemplate.id))
            ).one()
        return int(version or 0), int(count), max_id

    def refresh(self, force: bool = False) -> None:
        stamp = self._current_stamp()
        with self._mutex:
            if not force and stamp == self._stamp:
                return
            by_user: dict[int, list[np.ndarray]] = {}
            with self._db.session() as s:
                for user_id, enc in s.execute(select(FaceTemplate.user_id, FaceTemplate.encoding)):
                    by_user.setdefault(user_id, []).append(
                        np.frombuffer(enc, dtype="<f4").astype(np.float64)
                    )
            self._by_user = {u: np.vstack(v) for u, v in by_user.items()}
            self._stamp = stamp
            log.info("event=templates_loaded users=%d templates=%d", len(by_user), stamp[1])

    def for_user(self, user_id: int) -> np.ndarray:
        self.refresh()
        with self._mutex:
            return self._by_user.get(user_id, np.empty((0, 128)))

    def gallery(self) -> tuple[np.ndarray, list[int]]:
        """All templates stacked, with the user id of each row (for 1:N identification)."""
        self.refresh()
        with self._mutex:
            labels = [u for u, t in self._by_user.items() for _ in range(len(t))]
            stacked = (
                np.vstack(list(self._by_user.values())) if self._by_user else np.empty((0, 128))
            )
        return stacked, labels
