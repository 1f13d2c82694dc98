"""`python -m bench` (what `make bench` runs): every benchmark section, figures to
docs/BENCHMARKS.md and as JSON on the last stdout line.

The run is hermetic: a child process pinned to one core, BLAS/OpenMP threads at 1, an
environment without DOORWARD_* variables (so a developer's own door configuration never leaks
in) and a private temporary directory, removed at the end. Ratios are measured against a
baseline in the same run; absolute times vary with the load of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import BenchContext, SectionFunc, clean_env, log, write_section

PINNED_ENV = "BENCH_PINNED_CPU"
VISION_ENV = "BENCH_VISION"


def _sections() -> list[tuple[str, str, SectionFunc]]:
    """The sections in the order they run: (name in the doc markers, heading, function)."""
    from .admin_upload import admin_upload_section
    from .alerts import alerts_section
    from .face import face_check_section
    from .face_accuracy import face_accuracy_section
    from .liveness import liveness_memory_section, liveness_section, liveness_swap_section
    from .remote import remote_section
    from .sd_card import sd_card_section

    return [
        ("alerts", "Alerts", alerts_section),
        ("face-check", "Face check", face_check_section),
        ("face-accuracy", "Face accuracy on photos tuned on and held out", face_accuracy_section),
        ("liveness", "Liveness", liveness_section),
        ("liveness-swap", "Liveness: a live stranger and the user's photo", liveness_swap_section),
        ("liveness-memory", "Liveness: door process memory", liveness_memory_section),
        ("sd_card", "SD card", sd_card_section),
        ("admin-upload", "Admin page: largest accepted upload", admin_upload_section),
        ("remote", "Door memory with MQTT, Home Assistant and remote commands", remote_section),
    ]


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    ap.add_argument("--only", action="append", default=None, help="run only this section")
    ap.add_argument("--doc", type=Path, default=Path("docs/BENCHMARKS.md"))
    ap.add_argument("--no-doc", action="store_true", help="print only, do not write the doc")
    ap.add_argument("--config", type=Path, default=None, help="take [vision] from this TOML")
    return ap.parse_args(argv)


def _relaunch(argv: list[str]) -> int:
    """Re-run this module in a child pinned to one core with a clean environment."""
    from appliance.config import Config, load_config

    a = _args(argv)
    known = {n for n, _, _ in _sections()}
    for only in a.only or []:
        if only not in known:
            print(f"bench: unknown section {only!r} (sections: {', '.join(sorted(known))})")
            return 2
    config = load_config(str(a.config)) if a.config else Config()
    cpu = sorted(os.sched_getaffinity(0))[-1]
    tmp = tempfile.mkdtemp(prefix="doorward-bench-")
    env = clean_env()
    env.update({PINNED_ENV: str(cpu), VISION_ENV: json.dumps(config.vision.to_builtins())})
    env.update({"TMPDIR": tmp, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    try:
        return subprocess.run(
            [sys.executable, "-m", "bench", *argv],
            env=env,
            preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
            check=False,
        ).returncode
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if PINNED_ENV not in os.environ:
        return _relaunch(argv)
    a = _args(argv)
    cpu = int(os.environ[PINNED_ENV])
    vision = json.loads(os.environ.get(VISION_ENV) or "{}")
    ctx = BenchContext(quick=a.quick, vision=vision, cpu=cpu, log=log)
    figures: dict[str, Any] = {}
    for name, title, func in _sections():
        if a.only and name not in a.only:
            continue
        log(f"section {name} ...")
        t0 = time.perf_counter()
        figs, body = func(ctx)
        log(f"section {name} done in {time.perf_counter() - t0:.0f} s")
        figures.update(figs)
        if not a.no_doc:
            write_section(a.doc, name, title, body)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
