"""Liveness end to end with the DEFAULT config (liveness on): `doorward enroll` from a frame of
a real recording, then `doorward simulate` refuses a still photo of that user and grants the
user when the replay camera plays the real clip of them (tests/fixtures/clips, MIT)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from appliance.cli import main
from bench.attacks import clip_frames

pytestmark = pytest.mark.faces

CLIP = Path(__file__).resolve().parents[1] / "fixtures" / "clips" / "driving_d19.mp4"


@pytest.fixture
def door(tmp_path: Path) -> tuple[Path, list]:
    frames = clip_frames(CLIP, 10.0)
    enroll_png = tmp_path / "enroll.png"  # the user's enrollment photo: the clip's first frame
    cv2.imwrite(str(enroll_png), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    cfg = tmp_path / "doorward.toml"  # nothing but the data dir: [vision] is the default
    cfg.write_text(f'[device]\ndata_dir = "{tmp_path / "var"}"\n', encoding="utf-8")
    rc = main(["--config", str(cfg), "enroll", "--number", "5", "--name", "Nia", "--pin",
               "4826", "--photo", str(enroll_png)])  # fmt: skip
    assert rc == 0
    return cfg, frames


def simulate(cfg: Path, capsys: pytest.CaptureFixture[str], camera: Path) -> tuple[list, dict]:
    capsys.readouterr()
    assert main(["--config", str(cfg), "simulate", "--keys", "5*4826#", "--camera",
                 str(camera)]) == 0  # fmt: skip
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    return lines[:-1], lines[-1]


def test_default_config_refuses_a_still_photo_and_grants_the_real_clip(
    door, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, frames = door
    photo = tmp_path / "photo_of_nia.png"  # a later frame: the user's face, but a photo
    cv2.imwrite(str(photo), cv2.cvtColor(frames[20], cv2.COLOR_RGB2BGR))
    events, summary = simulate(cfg, capsys, photo)
    assert summary["granted"] is False and summary["relay_pulses"] == 0
    assert events[-1]["event"] == "denied_liveness"

    events, summary = simulate(cfg, capsys, CLIP)
    assert summary["granted"] is True and summary["relay_pulses"] == 1
    assert any(e["event"] == "granted" for e in events)
