"""The brute-force budget (wrong codes, face failures, a running lockout) kept across restarts.

Saved before the person sees a refusal, so a crash, a watchdog restart or a power cut cannot hand
out a fresh budget. Wall-clock times on disk, ages in memory: a clock step while the process is
down shifts the saved ages, never grants more attempts than the window allows.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

from appliance.core import Budget

log = logging.getLogger(__name__)

BUDGET_FILE = "budget.json"


class BudgetFile:
    """budget.json in the door's data directory, written atomically (tmp, fsync, rename)."""

    def __init__(self, data_dir: Path, wall_clock: Callable[[], float]) -> None:
        self.path = data_dir / BUDGET_FILE
        self.wall_clock = wall_clock
        self.failing = False  # the last save was refused (logged once, until one succeeds)

    def save(self, b: Budget) -> bool:
        """Write `b` (file, then its directory, synced); False when the disk refuses, which is
        logged once until a save succeeds again (the budget still holds in this process, and
        the door tries again)."""
        wall = self.wall_clock()
        data = {
            "version": 1,
            "saved_at": wall,
            "wrong": [wall - a for a in b.wrong_ages],
            "face_fails": [wall - a for a in b.face_fail_ages],
            "lockout_until": wall + b.lockout_remaining if b.lockout_remaining > 0 else None,
            # offline guest codes' own budget (core Policy.offline_fail_*)
            "offline_fails": [wall - a for a in b.offline_fail_ages],
            "offline_until": (
                wall + b.offline_lockout_remaining if b.offline_lockout_remaining > 0 else None
            ),
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(tmp, "w", encoding="ascii") as fh:
                json.dump(data, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            # the rename itself must survive a power cut, or the previous budget comes back
            fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:  # e.g. a full card
            if not self.failing:
                log.error("event=budget_save_failed path=%s error=%r", self.path, str(exc))
            self.failing = True
            return False
        if self.failing:
            log.warning("event=budget_saved_again path=%s", self.path)
        self.failing = False
        return True

    def load(self, lockout_s: float) -> Budget | None:
        """The budget an earlier process saved. None when there is no file (first start). An
        unreadable or corrupt file fails secure: a full lockout (`lockout_s`) from now."""
        error = ""
        try:
            raw: str | None = self.path.read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raw, error = None, str(exc)
        try:
            if raw is None:
                raise ValueError(error)
            data = json.loads(raw)
            wall = self.wall_clock()
            until = data.get("lockout_until")
            off_until = data.get("offline_until")
            budget = Budget(
                wrong_ages=tuple(wall - float(t) for t in data.get("wrong", [])),
                face_fail_ages=tuple(wall - float(t) for t in data.get("face_fails", [])),
                lockout_remaining=0.0 if until is None else float(until) - wall,
                offline_fail_ages=tuple(wall - float(t) for t in data.get("offline_fails", [])),
                offline_lockout_remaining=0.0 if off_until is None else float(off_until) - wall,
            )
            values = (*budget.wrong_ages, *budget.face_fail_ages, budget.lockout_remaining,
                      *budget.offline_fail_ages, budget.offline_lockout_remaining)  # fmt: skip
            if not all(math.isfinite(x) for x in values):
                raise ValueError("not finite")
        except (ValueError, TypeError, AttributeError) as exc:
            log.error("event=budget_unreadable path=%s error=%r action=lockout_s=%.0f",
                      self.path, str(exc), lockout_s)  # fmt: skip
            return Budget(lockout_remaining=lockout_s)
        return budget
