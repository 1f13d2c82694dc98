"""What every benchmark section shares: its context, the doc writer, the photos, a clean
environment for child processes and the page-cache drop before a memory figure."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Variables that would point a benchmark's child process at the user's own door: dropped.
PRIVATE_PREFIXES = ("DOORWARD_",)
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass
class BenchContext:
    quick: bool
    vision: dict[str, Any]
    cpu: int
    log: Callable[[str], None]
    notes: dict[str, Any] = field(default_factory=dict)


SectionFunc = Callable[[BenchContext], tuple[dict[str, Any], str]]


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def faces_dir() -> Path:
    """The real photos: $FACES_DIR, else the copy in the repository (tests/fixtures/faces)."""
    return Path(os.environ.get("FACES_DIR") or REPO / "tests" / "fixtures" / "faces")


def clean_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default os.environ) without the variables that configure a real door, with
    BLAS/OpenMP at one thread: what every child process of the benchmark runs with."""
    env = {k: v for k, v in (base or os.environ).items() if not k.startswith(PRIVATE_PREFIXES)}
    env.update({k: "1" for k in THREAD_ENV})
    return env


def write_section(doc: Path, name: str, title: str, body: str) -> None:
    """Replace (or append) the block between this section's markers, keeping everything else."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    block = f"{start}\n## {title}\n\n{body.strip()}\n{end}"
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")


def drop_library_cache() -> int:
    """Evict the shared libraries of this Python and its venv from the page cache.

    Peak RSS counts the pages of shared libraries mapped into the process, and on recent
    kernels how many get mapped depends on how the file sits in the page cache: a library
    pip has just written is cached in large folios and maps up to twice the pages of one read
    back after a boot (cv2 alone: 33 MB against 12 MB here). Dropping the cache first measures
    the state of a door after a power cycle, the same in every run. Returns the files evicted
    (-1: the whole page cache was dropped).

    As root (CI, these machines) the whole clean page cache is dropped: fadvise alone leaves
    the pages of a file that another process still maps, and a venv pip has just written then
    measured ~177 MB here against ~149 MB after a full drop, for the same door.
    """
    import sysconfig

    os.sync()  # dirty pages cannot be dropped
    try:
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as fh:
            fh.write("1\n")
        return -1
    except OSError:
        pass  # not root: evict what fadvise can

    roots = {
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
        sysconfig.get_config_var("LIBDIR") or "",
    }
    n = 0
    for root in filter(None, roots):
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if ".so" not in name:
                    continue
                try:
                    fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
                except OSError:
                    continue
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    n += 1
                finally:
                    os.close(fd)
    return n
