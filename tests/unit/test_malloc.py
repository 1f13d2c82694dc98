"""The door process's malloc settings: applied on glibc, the environment wins."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

SCRIPT = "from appliance.malloc import tune_malloc; print(sorted(tune_malloc().items()))"

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")


def _run(env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout.strip()


@glibc
def test_fixed_mmap_threshold_and_two_arenas() -> None:
    assert _run({}) == (
        "[('arena_max', 2), ('mmap_threshold', 262144), ('trim_threshold', 524288)]"
    )


@glibc
def test_settings_from_the_environment_are_left_alone() -> None:
    env = {
        "MALLOC_ARENA_MAX": "4",
        "MALLOC_MMAP_THRESHOLD_": "1048576",
        "MALLOC_TRIM_THRESHOLD_": "2097152",
    }
    assert _run(env) == "[]"


FRAGMENT = """
import sys
import numpy as np
if sys.argv[1] == "tuned":
    from appliance.malloc import tune_malloc
    tune_malloc()
def rss():
    return int([l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1])
frames = [np.ones((1080, 1920, 3), np.uint8) for _ in range(2)]
del frames  # glibc raises its mmap threshold when such a block is freed
base = rss()
keep = []
for _ in range(5):
    f = np.ones((1080, 1920, 3), np.uint8)
    keep.append(bytearray(4096))  # a small long-lived block lands above the frame
    del f
print(rss() - base)
"""


TRIM = """
import sys
import numpy as np
def rss():
    return int([l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1])
frame = np.ones((1080, 1920, 3), np.uint8)
del frame  # before tuning (as imports do): glibc raises mmap AND trim thresholds (12 MB)
if sys.argv[1] == "tuned":
    from appliance.malloc import tune_malloc
    tune_malloc()
base = rss()
blocks = [bytearray(100 * 1024) for _ in range(80)]  # chips, spectra: below the mmap line
for b in blocks:
    b[::4096] = b"x" * len(b[::4096])
del blocks, b  # 8 MB free at the top of the heap
print(rss() - base)
"""


def _grown_kb(mode: str, script: str = FRAGMENT) -> int:
    out = subprocess.run(
        [sys.executable, "-c", script, mode], capture_output=True, text=True, check=True, env={}
    )
    return int(out.stdout.strip())


@glibc
def test_freed_frames_go_back_to_the_kernel() -> None:
    """Untuned, a freed 1080p frame stays in the heap under a small block; tuned, it leaves."""
    assert _grown_kb("default") > 4096  # the problem this module exists for
    assert _grown_kb("tuned") < 1024


@glibc
def test_freed_heap_top_is_trimmed_after_an_early_raise() -> None:
    """Blocks freed before tuning raised glibc's trim threshold; tuning lowers it again, so a
    visit's freed small blocks at the top of the heap are returned."""
    assert _grown_kb("default", TRIM) > 4096  # the problem: 8 MB stay resident
    assert _grown_kb("tuned", TRIM) < 1024
