"""Owns the data filesystem's free space: a deletable reserve file and a free-space floor.

A full SD card is the classic Pi failure. Two things keep decisions and alerts writable when
informational writes (motion, heartbeats, door open/close) have filled the card:

- a reserve file (`<data_dir>/.reserve`, health.storage_reserve_mb) that the door deletes the
  moment a decision or an alert cannot be written, and then tries that write again;
- a floor (health.storage_floor_mb): below it, informational events wait in memory instead of
  being written, and the door raises one low_disk_space alert per episode.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

RESERVE_NAME = ".reserve"


class StorageGuard:
    def __init__(self, data_dir: Path, *, reserve_mb: float, floor_mb: float) -> None:
        self.data_dir = Path(data_dir)
        self.reserve_path = self.data_dir / RESERVE_NAME
        self.reserve_bytes = int(reserve_mb * 1024 * 1024)
        self.floor_mb = floor_mb
        self.low = False  # below the floor at the last check()

    def free_mb(self) -> float:
        st = os.statvfs(self.data_dir)
        return st.f_bavail * st.f_frsize / (1024 * 1024)

    @property
    def has_reserve(self) -> bool:
        try:
            return self.reserve_path.stat().st_size >= self.reserve_bytes > 0
        except OSError:
            return False

    def ensure_reserve(self) -> bool:
        """Create the reserve file if it is missing and the space is there; True if it exists."""
        if self.reserve_bytes <= 0:
            return False
        if self.has_reserve:
            return True
        try:
            free = self.free_mb() * 1024 * 1024
            if free < self.reserve_bytes * 2 or free - self.reserve_bytes < self.floor_mb * 2**20:
                return False  # not now: the space is needed; the next check() tries again
            fd = os.open(self.reserve_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.reserve_bytes)  # real blocks, not a sparse file
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("event=storage_reserve_failed path=%s error=%r", self.reserve_path, exc)
            self.reserve_path.unlink(missing_ok=True)
            return False
        log.info("event=storage_reserve_created path=%s bytes=%d", self.reserve_path,
                 self.reserve_bytes)  # fmt: skip
        return True

    def release_reserve(self) -> bool:
        """Delete the reserve file (a decision or alert needs the space); True if there was one."""
        try:
            size = self.reserve_path.stat().st_size
            self.reserve_path.unlink()
        except OSError:
            return False
        log.warning("event=storage_reserve_released path=%s bytes=%d", self.reserve_path, size)
        return size > 0

    def check(self) -> str | None:
        """Measure free space: "low" when it just fell below the floor, "ok" when it just
        recovered (then the reserve is re-created), else None."""
        try:
            free = self.free_mb()
        except OSError as exc:
            log.warning("event=storage_check_failed error=%r", exc)
            return None
        if not self.low and free < self.floor_mb:
            self.low = True
            return "low"
        if self.low and free >= self.floor_mb:
            self.low = False
            self.ensure_reserve()
            return "ok"
        if not self.low:
            self.ensure_reserve()
        return None
