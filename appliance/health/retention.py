"""Owns bounded snapshot retention on the SD card: by age, then oldest first by total size."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SNAPSHOT_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


@dataclass(frozen=True)
class PruneStats:
    scanned: int
    kept: int
    deleted_age: int
    deleted_size: int
    bytes_before: int
    bytes_after: int
    errors: int = 0

    @property
    def deleted(self) -> int:
        return self.deleted_age + self.deleted_size

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "deleted": self.deleted}


def _remove_empty_dirs(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        path = Path(dirpath)
        if path == root or filenames:
            continue
        # rmdir fails when not empty (a new snapshot arrived); sub-directories go bottom-up
        with contextlib.suppress(OSError):
            path.rmdir()


def prune_snapshots(
    snapshot_dir: str | os.PathLike[str],
    max_age_days: float | None,
    max_total_mb: float | None,
    *,
    now: float | None = None,
) -> PruneStats:
    """Delete snapshots older than `max_age_days`, then the oldest until <= `max_total_mb`.

    Only image files (by suffix) are considered; anything else under the directory is left
    alone. Age is the file's mtime. None disables a bound. A missing directory is not an error.
    Empty date sub-directories left behind are removed.
    """
    if max_age_days is not None and max_age_days < 0:
        raise ValueError(f"max_age_days must be >= 0, got {max_age_days}")
    if max_total_mb is not None and max_total_mb < 0:
        raise ValueError(f"max_total_mb must be >= 0, got {max_total_mb}")
    root = Path(snapshot_dir)
    if not root.is_dir():
        return PruneStats(0, 0, 0, 0, 0, 0)
    now = time.time() if now is None else now

    files: list[tuple[float, int, Path]] = []
    errors = 0
    for path in root.rglob("*"):
        if path.suffix.lower() not in SNAPSHOT_SUFFIXES:
            continue
        try:
            st = path.stat()
        except OSError:
            errors += 1
            continue
        if not path.is_file():
            continue
        files.append((st.st_mtime, st.st_size, path))
    files.sort(key=lambda f: (f[0], str(f[2])))  # oldest first
    bytes_before = sum(size for _, size, _ in files)

    def unlink(path: Path) -> bool:
        nonlocal errors
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            errors += 1
            log.warning("event=snapshot_prune_error path=%s error=%s", path, exc)
            return False

    kept: list[tuple[float, int, Path]] = []
    deleted_age = 0
    if max_age_days is not None:
        cutoff = now - max_age_days * 86400
        for entry in files:
            if entry[0] < cutoff and unlink(entry[2]):
                deleted_age += 1
            else:
                kept.append(entry)
    else:
        kept = list(files)

    deleted_size = 0
    total = sum(size for _, size, _ in kept)
    if max_total_mb is not None:
        limit = int(max_total_mb * 1024 * 1024)
        remaining: list[tuple[float, int, Path]] = []
        for i, entry in enumerate(kept):
            if total <= limit:
                remaining.extend(kept[i:])
                break
            if unlink(entry[2]):
                deleted_size += 1
                total -= entry[1]
            else:
                remaining.append(entry)
        kept = remaining

    _remove_empty_dirs(root)
    stats = PruneStats(
        scanned=len(files),
        kept=len(kept),
        deleted_age=deleted_age,
        deleted_size=deleted_size,
        bytes_before=bytes_before,
        bytes_after=total,
        errors=errors,
    )
    log.info(
        "event=snapshot_prune dir=%s scanned=%d deleted_age=%d deleted_size=%d "
        "bytes_before=%d bytes_after=%d errors=%d",
        root,
        stats.scanned,
        stats.deleted_age,
        stats.deleted_size,
        stats.bytes_before,
        stats.bytes_after,
        stats.errors,
    )
    return stats
