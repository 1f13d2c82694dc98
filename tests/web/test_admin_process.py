"""The admin page's own process (the Pi's doorward-admin unit) loads no door hardware code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# What `doorward admin` does up to serving, then a login page and a failed login, in a fresh
# interpreter; prints which door-only modules ended up loaded.
SCRIPT = r"""
import json, sys
from appliance.cli.main import build_parser
from appliance.config import Config
from appliance.cli.common import open_central_db
from web_admin import create_app

data_dir = sys.argv[1]
admin_config = Config.convert({"device": {"data_dir": data_dir}})
args = build_parser().parse_args(["admin"])
args.config = admin_config
db = open_central_db(args)
app = create_app(config=admin_config, db=db)
client = app.test_client()
assert client.get("/login").status_code == 200
client.post("/login", data={"username": "nobody", "password": "wrong"})
heavy = ["gpiozero", "cv2", "picamera2", "appliance.door", "appliance.hardware"]
print(json.dumps({m: m in sys.modules for m in heavy}))
"""


def test_admin_process_imports_neither_gpio_nor_opencv(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "var")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == dict.fromkeys(loaded, False), f"door-only modules loaded: {loaded}"
