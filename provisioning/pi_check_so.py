"""Owns the pi-check's compiled-code checks: every extension module imports, every .so loads
on 64 KiB pages, and a face check's time under emulation.

    python pi_check_so.py imports VENV   # run by the venv's own (emulated) interpreter
    python pi_check_so.py align VENV     # any Python: reads the ELF program headers itself
    python pi_check_so.py face-timing ENROLL.jpg PROBE.jpg [N]   # the venv's interpreter

Stdlib only, so it runs before anything else is known to work.
"""

from __future__ import annotations

import importlib
import struct
import subprocess
import sys
from pathlib import Path

PAGE = 64 * 1024  # the largest page size an arm64 kernel uses; a multiple of the Pi 5's 16 KiB
PT_LOAD = 1


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise SystemExit(f"no site-packages under {venv}")
    return found[0]


def shared_objects(venv: Path) -> list[Path]:
    return sorted(p for p in site_packages(venv).rglob("*.so*") if p.is_file() and ".so" in p.name)


def module_name(site: Path, path: Path) -> str | None:
    """The import name of an extension module (None for a plain shared library)."""
    name = path.name
    if ".cpython-" in name:
        stem = name.split(".cpython-", 1)[0]
    elif name.endswith(".abi3.so"):
        stem = name[: -len(".abi3.so")]
    else:
        return None
    parts = [*path.relative_to(site).parent.parts, stem]
    if any(not p.isidentifier() for p in parts):
        return None  # inside a data folder (e.g. numpy.libs), not importable by name
    if len(parts) >= 2 and parts[-1] == parts[-2]:
        parts.pop()  # cv2/cv2.abi3.so is loaded by `import cv2`, never by its own name
    return ".".join(parts)


def load_alignments(path: Path) -> list[int]:
    """p_align of every PT_LOAD segment of a 64-bit little-endian ELF file."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    out = []
    for i in range(phnum):
        off = phoff + i * phentsize
        p_type = struct.unpack_from("<I", data, off)[0]
        if p_type == PT_LOAD:
            out.append(struct.unpack_from("<Q", data, off + 0x30)[0])
    return out


def cmd_align(venv: Path) -> int:
    bad = []
    sos = shared_objects(venv)
    for so in sos:
        try:
            aligns = load_alignments(so)
        except ValueError as exc:
            bad.append(f"{so}: {exc}")
            continue
        small = [a for a in aligns if a % PAGE]
        if small:
            bad.append(f"{so}: LOAD aligned to {min(small)} bytes, not {PAGE}")
    for line in bad:
        print(line)
    print(f"align: {len(sos)} shared objects, {len(bad)} not {PAGE // 1024} KiB-aligned")
    return 1 if bad else 0


def cmd_imports(venv: Path, one: str | None = None) -> int:
    site = site_packages(venv)
    names = sorted({n for p in shared_objects(venv) if (n := module_name(site, p))})
    if one is not None:
        importlib.import_module(one)
        return 0
    failed, optional = [], []
    for name in names:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # a Python module the extension wants is not installed (PIL._imagingtk: tkinter):
            # the .so itself loaded; said, not failed
            optional.append(f"{name}: needs {exc.name}, not installed")
        except Exception as exc:
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    for line in optional:
        print(f"note: {line}")
    for line in failed:
        print(line)
    print(
        f"imports: {len(names)} compiled modules, {len(failed)} failed, "
        f"{len(optional)} need a missing optional module"
    )
    return 1 if failed else 0


def cmd_face_timing(enroll: Path, probe: Path, repeat: int) -> int:
    """One face check timed `repeat` times in one process: the first includes the emulator's
    translation of dlib's code; the later ones are what a running door pays per check."""
    import json
    import time

    from appliance.config import VisionConfig
    from appliance.vision import FaceEngine, load_image

    class Still:
        def __init__(self, frame: object) -> None:
            self.frame = frame

        def start(self) -> None: ...

        def stop(self) -> None: ...

        def read(self) -> object:
            return self.frame

    engine = FaceEngine(VisionConfig())
    engine.warm_up(liveness=False)
    import numpy as np

    templates = np.stack([engine.enroll(load_image(enroll), name=str(enroll)).encoding])
    frame = load_image(probe)
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        d = engine.verify(Still(frame), templates, liveness=False, clock=time.perf_counter)
        runs.append(round((time.perf_counter() - t0) * 1000.0, 1))
    print(
        json.dumps(
            {
                "matched": d.matched,
                "distance": round(float(d.distance or 0), 4),
                "first_ms": runs[0],
                "best_ms": min(runs),
                "runs_ms": runs,
            }
        )
    )
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "face-timing" and len(argv) in (3, 4):
        return cmd_face_timing(Path(argv[1]), Path(argv[2]), int(argv[3]) if len(argv) == 4 else 4)
    if len(argv) < 2 or argv[0] not in ("align", "imports"):
        print(__doc__, file=sys.stderr)
        return 2
    venv = Path(argv[1])
    if argv[0] == "align":
        return cmd_align(venv)
    if len(argv) == 3:
        return cmd_imports(venv, argv[2])
    rc = cmd_imports(venv)
    return rc


def imports_one_by_one(venv: Path) -> int:
    """After a crash (SIGILL kills the whole process): find the modules that take it down."""
    site = site_packages(venv)
    names = sorted({n for p in shared_objects(venv) if (n := module_name(site, p))})
    dead = []
    for name in names:
        rc = subprocess.run([sys.executable, __file__, "imports", str(venv), name]).returncode
        if rc != 0:
            dead.append(f"{name}: exit {rc}")
    for line in dead:
        print(line)
    print(f"imports: {len(names)} compiled modules, {len(dead)} failed (one process each)")
    return 1 if dead else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "imports":
        # a child does the bulk import: a signal there (SIGILL) is caught and narrowed down here
        child = subprocess.run([sys.executable, __file__, "imports-all", sys.argv[2]])
        if child.returncode < 0:
            print(f"imports: the bulk import died of signal {-child.returncode}; one by one:")
            sys.exit(imports_one_by_one(Path(sys.argv[2])))
        sys.exit(child.returncode)
    if len(sys.argv) == 3 and sys.argv[1] == "imports-all":
        sys.exit(cmd_imports(Path(sys.argv[2])))
    sys.exit(main(sys.argv[1:]))
