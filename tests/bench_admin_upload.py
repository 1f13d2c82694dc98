"""Admin process memory on the largest upload it accepts: 5 photos in one enrollment.

    .venv/bin/python tests/bench_admin_upload.py [--faces ../shared/faces]

Each case runs in a fresh subprocess: the admin app (embedded default settings, a temporary
data dir) is built, signed in, and its face models are loaded by one ordinary enrollment; that
is the idle baseline. Then one POST /users/new carries 5 photos of the largest kind accepted
(PNG at the PNG pixel cap; JPEG at max_image_pixels), each with a real face so that every
photo is decoded and encoded. Peak RSS is the kernel's high-water mark (ru_maxrss), read
after the upload. Prints one JSON object; the unit's MemoryMax is 512M.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FACE = "people/rose_leslie/rose1.jpg"
TARGET_MB = 320  # leaves ~190 MB of the unit's MemoryMax=512M


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
        config = Config.model_validate(
            {"device": {"data_dir": tmp}, "hardware": {"pin_factory": "mock"}}
        )
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=Path(os.environ.get(
        "FACES_DIR", REPO.parent / "shared" / "faces")))  # fmt: skip
    ap.add_argument("--child", choices=["PNG", "JPEG"], help=argparse.SUPPRESS)
    ap.add_argument("--photo", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.faces, args.photo)))
        return 0
    if not (args.faces / FACE).is_file():
        print(f"bench_admin_upload: no face photo at {args.faces / FACE} (--faces DIR)",
              file=sys.stderr)  # fmt: skip
        return 2
    import math

    from appliance.config import AdminConfig
    from web_admin.uploads import PNG_MAX_PIXELS

    a = AdminConfig()
    cases = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    for kind in ("PNG", "JPEG"):
        # the largest accepted photo of each kind: the PNG cap, or max_image_pixels for JPEG
        max_pixels = PNG_MAX_PIXELS if kind == "PNG" else a.max_image_pixels
        side = min(a.max_image_side, math.isqrt(max_pixels))
        photo = tmp / f"{side}x{side}.{kind.lower()}"
        photo.write_bytes(_photo(args.faces / FACE, kind, side))
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--faces", str(args.faces),
             "--photo", str(photo)],
            capture_output=True, text=True, cwd=REPO, check=False,
        )  # fmt: skip
        photo.unlink()
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            return 1
        cases.append(json.loads(out.stdout.strip().splitlines()[-1]))
    tmp.rmdir()
    worst = max(cases, key=lambda c: c["peak_rss_mb"])
    print(json.dumps({
        "bench": "admin_upload", "memory_max_mb": 512, "target_peak_mb": TARGET_MB,
        "peak_rss_mb": worst["peak_rss_mb"], "idle_rss_mb": worst["idle_rss_mb"],
        "within_target": worst["peak_rss_mb"] <= TARGET_MB, "cases": cases,
    }, indent=2))  # fmt: skip
    return 0 if worst["peak_rss_mb"] <= TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
