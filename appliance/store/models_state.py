"""Owns the door's reported state: the door process writes it, an admin page in another
process (the Pi layout: doorward run --no-admin beside doorward admin) reads it."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .db import Database
from .models import Base, UTCDateTime, utcnow

log = logging.getLogger(__name__)


class DoorState(Base):
    """One row per door: its last status (lock, contact, state machine) and when it was said."""

    __tablename__ = "door_states"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status_json: Mapped[str] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def write_state(db: Database, device_id: str, status: dict[str, Any]) -> None:
    text = json.dumps(status, sort_keys=True, default=str)
    with db.session() as s:
        row = s.get(DoorState, device_id)
        if row is None:
            s.add(DoorState(device_id=device_id, status_json=text, reported_at=utcnow()))
        else:
            row.status_json = text
            row.reported_at = utcnow()


def read_state(db: Database, device_id: str) -> tuple[dict[str, Any], datetime] | None:
    """(status, reported_at) of the door, or None when it never reported."""
    with db.session() as s:
        row = s.get(DoorState, device_id)
        if row is None:
            return None
        return json.loads(row.status_json), row.reported_at


class DoorStateWriter:
    """Writes the door's status when it changes (checked every `interval_s`), and at least
    every `refresh_s` so that a reader can tell a live door from a stopped one."""

    def __init__(
        self,
        db: Database,
        device_id: str,
        status: Callable[[], dict[str, Any]],
        *,
        interval_s: float = 0.5,
        refresh_s: float = 15.0,
    ) -> None:
        self.db, self.device_id, self.status = db, device_id, status
        self.interval_s, self.refresh_s = interval_s, refresh_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.writes = 0

    def tick(self, last: dict[str, Any] | None, since: float, now: float) -> tuple[Any, float]:
        """One check: write when the status changed or `refresh_s` passed; (last, since)."""
        current = self.status()
        current.pop("recent", None)
        if current != last or now - since >= self.refresh_s:
            try:
                write_state(self.db, self.device_id, current)
                self.writes += 1
                return current, now
            except Exception as exc:  # a busy or full disk: the door goes on; try next time
                log.warning("event=door_state_write_failed error=%r", str(exc)[:200])
        return last, since

    def _run(self) -> None:
        import time

        last: dict[str, Any] | None = None
        since = 0.0
        while not self._stop.is_set():
            last, since = self.tick(last, since, time.monotonic())
            self._stop.wait(self.interval_s)

    def start(self) -> DoorStateWriter:
        self._thread = threading.Thread(target=self._run, name="door-state", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
