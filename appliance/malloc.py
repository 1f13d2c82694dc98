"""Owns the door process's malloc settings (glibc): frames go back to the kernel when freed.

A 1080p frame is 6 MB. glibc serves blocks that large with mmap at first, but after the first
one is freed it raises its mmap threshold (up to 32 MB) and serves the next ones from the heap,
where they stay after free. With frames allocated on several threads (camera, face check,
snapshot) that fragmentation was ~15 MB of peak RSS per visit. Fixing the threshold keeps
every block of 256 KiB or more in its own mapping, returned on free, and two arenas bound the
per-thread heaps. The trim threshold is set too: each raise of the mmap threshold before this
runs (imports free large blocks) had also doubled it, up to 64 MB, and mallopt does not undo
that, so freed space at the top of the heap stayed resident (~7 MB with liveness on, the door
judging 30 frames). Values that the environment sets (MALLOC_MMAP_THRESHOLD_,
MALLOC_TRIM_THRESHOLD_, MALLOC_ARENA_MAX) win; off glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # the ratio glibc keeps when it moves them itself
ARENA_MAX = 2


def tune_malloc() -> dict[str, int]:
    """Apply the settings; returns those that took effect (empty off glibc)."""
    name = ctypes.util.find_library("c")
    if not name:
        return {}
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return {}
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied: dict[str, int] = {}
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ and mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD):
        applied["mmap_threshold"] = MMAP_THRESHOLD
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD):
        applied["trim_threshold"] = TRIM_THRESHOLD
    if "MALLOC_ARENA_MAX" not in os.environ and mallopt(M_ARENA_MAX, ARENA_MAX):
        applied["arena_max"] = ARENA_MAX
    log.debug("event=malloc_tuned %s", applied)
    return applied
