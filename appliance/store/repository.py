"""Owns what the door reads from its local replica: code checks and cached face templates."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

import numpy as np
from sqlalchemy import func, select

from appliance.core import CodeCheck, Verdict
from appliance.security import PinHasher

from .db import Database
from .models import FaceTemplate, User, utcnow

log = logging.getLogger(__name__)


class ReplicaCredentials:
    """core.Credentials on the local replica: argon2id PIN (and duress PIN) per user number.

    An unknown, inactive or out-of-window user costs the same hashing time as a wrong PIN, so
    timing does not tell which user numbers exist.
    """

    def __init__(
        self, db: Database, hasher: PinHasher, now: Callable[[], datetime] = utcnow
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._now = now

    def check(self, user_number: int, pin: str) -> CodeCheck:
        with self._db.session() as s:
            user = s.scalars(select(User).where(User.number == user_number)).one_or_none()
            if user is None or not user.is_valid_at(self._now()):
                self._hasher.burn()
                return CodeCheck(Verdict.WRONG)
            pin_hash, duress_hash, user_id = user.pin_hash, user.duress_pin_hash, user.id
        if self._hasher.verify(pin_hash, pin):
            return CodeCheck(Verdict.OK, user_id)
        if duress_hash and self._hasher.verify(duress_hash, pin):
            return CodeCheck(Verdict.DURESS, user_id)
        return CodeCheck(Verdict.WRONG)


class TemplateCache:
    """Every user's face templates as float arrays, reloaded only when the table changes."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._mutex = threading.Lock()
        self._stamp: tuple[int, int | None] | None = None
        self._by_user: dict[int, np.ndarray] = {}

    def _current_stamp(self) -> tuple[int, int | None]:
        with self._db.session() as s:
            count, max_id = s.execute(
                select(func.count(FaceTemplate.id), func.max(FaceTemplate.id))
            ).one()
        return int(count), max_id

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
            log.info("event=templates_loaded users=%d templates=%d", len(by_user), stamp[0])

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
