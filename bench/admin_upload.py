"""Admin process memory on the largest upload it accepts: 5 photos in one enrollment.

    make bench   (section admin-upload), or alone: .venv/bin/python -m bench.admin_upload

Each case runs in a fresh subprocess: the admin app (embedded default settings, a temporary
data dir) is built, signed in, and its face models are loaded by one ordinary enrollment; that
is the idle baseline. Then one POST /users/new carries 5 photos of the largest kind accepted
(PNG at the PNG pixel cap; JPEG at max_image_pixels), each with a real face so that every
photo is decoded and encoded. Peak RSS is the kernel's high-water mark (VmHWM), read
after the upload. Prints one JSON object; the unit's MemoryMax is 512M.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FACES = Path(os.environ.get("FACES_DIR") or REPO / "tests" / "fixtures" / "faces")
FACE = "people/rose_leslie/rose1.jpg"
TARGET_MB = 320  # leaves ~190 MB of the unit's MemoryMax=512M


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    """This process's own RSS high-water mark (VmHWM). Not ru_maxrss: Linux carries the
    pre-exec high-water mark of the forked parent into the child's ru_maxrss, so a child of a
    large benchmark process would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _photo(face: Path, kind: str, side: int) -> bytes:
    """A side x side canvas (compresses well, so 5 fit the body limit) with a real face."""
    from PIL import Image

    with Image.open(face) as im:
        f = im.convert("RGB")
    f = f.resize((f.width * 1400 // f.height, 1400))
    canvas = Image.new("RGB", (side, side), (128, 128, 128))
    canvas.paste(f, (side // 4, side // 4))
    buf = io.BytesIO()
    canvas.save(buf, kind, **({"quality": 85} if kind == "JPEG" else {}))
    return buf.getvalue()


def child(kind: str, faces: Path, photo_file: Path) -> dict:
    import re

    from appliance.config import Config
    from appliance.store.central import open_local_replica
    from web_admin import create_app
    from web_admin.accounts import create_account

    with tempfile.TemporaryDirectory() as tmp:
        config = Config.convert({"device": {"data_dir": tmp}, "hardware": {"pin_factory": "mock"}})
        a = config.admin
        db = open_local_replica(config)
        create_account(db, "admin", "bench password 2026", "admin")
        app = create_app(config=config, db=db, test_config={"BOOTSTRAP_ADMIN": False})
        c = app.test_client()

        def form_token(path: str) -> str:
            return re.findall(r'name="csrf_token" value="([^"]+)"', c.get(path).text)[-1]

        c.post("/login", data={"csrf_token": form_token("/login"), "username": "admin",
                               "password": "bench password 2026"})  # fmt: skip

        def enroll(number: int, photos: list[bytes], ext: str) -> int:
            files = [(io.BytesIO(p), f"p{i}.{ext}") for i, p in enumerate(photos)]
            r = c.post("/users/new", data={
                "csrf_token": form_token("/users/new"), "number": str(number),
                "name": f"Bench {number}", "pin": "2468", "role": "resident", "photos": files,
            }, content_type="multipart/form-data")  # fmt: skip
            assert r.status_code == 302, r.text[-800:]
            return r.status_code

        enroll(1, [(faces / FACE).read_bytes()], "jpg")  # models loaded: the idle baseline
        photo = photo_file.read_bytes()  # made by the parent: its pixels are not counted here
        body_mb = 5 * len(photo) / 2**20
        assert body_mb < a.max_upload_mb, f"5 photos are {body_mb:.1f} MB"
        idle, peak_before = _rss_mb(), _peak_mb()
        enroll(2, [photo] * 5, "png" if kind == "PNG" else "jpg")
        peak = _peak_mb()
        db.close()
    return {
        "kind": kind,
        "photo": photo_file.stem,
        "photo_kb": round(len(photo) / 1024),
        "files": 5,
        "idle_rss_mb": round(idle, 1),
        "peak_before_upload_mb": round(peak_before, 1),
        "peak_rss_mb": round(peak, 1),
        "upload_cost_mb": round(peak - idle, 1),
    }


def measure(faces: Path) -> dict[str, Any]:
    """Both cases, each in a fresh child process; the worst peak against the target."""
    import math

    from appliance.config import AdminConfig
    from web_admin.uploads import PNG_MAX_PIXELS

    if not (faces / FACE).is_file():
        raise SystemExit(f"bench: no face photo at {faces / FACE} (set FACES_DIR)")
    a = AdminConfig()
    cases = []
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        for kind in ("PNG", "JPEG"):
            # the largest accepted photo of each kind: the PNG cap, or max_image_pixels (JPEG)
            max_pixels = PNG_MAX_PIXELS if kind == "PNG" else a.max_image_pixels
            side = min(a.max_image_side, math.isqrt(max_pixels))
            photo = Path(tmp) / f"{side}x{side}.{kind.lower()}"
            photo.write_bytes(_photo(faces / FACE, kind, side))
            out = subprocess.run(
                [sys.executable, "-m", "bench.admin_upload", "--child", kind,
                 "--faces", str(faces), "--photo", str(photo)],
                capture_output=True, text=True, cwd=REPO, check=False,
            )  # fmt: skip
            if out.returncode != 0:
                raise RuntimeError(f"bench: admin upload child failed:\n{out.stderr[-2000:]}")
            cases.append(json.loads(out.stdout.strip().splitlines()[-1]))
    worst = max(cases, key=lambda c: c["peak_rss_mb"])
    return {
        "bench": "admin_upload", "memory_max_mb": 512, "target_peak_mb": TARGET_MB,
        "peak_rss_mb": worst["peak_rss_mb"], "idle_rss_mb": worst["idle_rss_mb"],
        "within_target": worst["peak_rss_mb"] <= TARGET_MB, "cases": cases,
    }  # fmt: skip


def admin_upload_section(ctx: Any) -> tuple[dict[str, Any], str]:
    """The `make bench` section: figures and the markdown of docs/BENCHMARKS.md."""
    r = measure(FACES)
    rows = "\n".join(
        f"| {c['kind']} {c['photo']} | {c['photo_kb']} KB | {c['idle_rss_mb']} MB "
        f"| {c['peak_rss_mb']} MB |"
        for c in r["cases"]
    )
    body = f"""Command: `make bench` (or `.venv/bin/python -m bench --only admin-upload`;
`.venv/bin/python -m bench.admin_upload` prints the JSON alone and exits 1 above the target).

Each case runs in a fresh subprocess with the default `[admin]` limits: the admin app is built,
signed in, and its face models are loaded by one ordinary enrollment (the idle baseline); then
one `POST /users/new` carries 5 photos of the largest kind accepted, each with a real face (so
every photo is decoded and encoded): PNG at the PNG cap (16 MP), JPEG at `max_image_pixels`.
Peak RSS is the child's own `VmHWM` after the upload.

Uploads are decoded one at a time by the door's bounded decoder (`appliance/vision/image.py`,
at most 2000 px on the long side for uploads, JPEGs at a reduced DCT scale); each photo is
kept only as its template and a 1024 px JPEG before the next is decoded. A PNG above 16 MP
is refused from its header (PNG cannot be decoded at a reduced scale).

| Case (5 files) | File | Idle RSS | Peak RSS |
|---|---|---|---|
{rows}

Target: peak ≤ {TARGET_MB} MB, leaving room in the unit's `MemoryMax=512M`:
**{"met" if r["within_target"] else "NOT met"}** (worst peak {r["peak_rss_mb"]} MB). Before
(issue #12): one 105 KB 6000x6000 PNG took the process from 115 MB to 781 MB; such a PNG is
now refused."""
    figures = {"admin_upload_peak_rss_mb": r["peak_rss_mb"],
               "admin_upload_idle_rss_mb": r["idle_rss_mb"],
               "admin_upload_within_target": r["within_target"]}  # fmt: skip
    return figures, body


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=FACES)
    ap.add_argument("--child", choices=["PNG", "JPEG"], help=argparse.SUPPRESS)
    ap.add_argument("--photo", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.faces, args.photo)))
        return 0
    r = measure(args.faces)
    print(json.dumps(r, indent=2))
    return 0 if r["within_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
