"""The door's liveness check on real files: stills, moving prints and screen replays are
refused, real recordings of people pass; the cues one by one; `doorward eval-liveness`."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from appliance.cli import main
from appliance.config import VisionConfig
from appliance.vision import FaceEngine, liveness
from appliance.vision.liveness import (
    CHIP,
    LivenessCheck,
    LivenessLimits,
    motion_score,
    peak_ratio,
)
from bench.attacks import Screen, clip_frames, handheld, screen_replay
from tests.support.waiting import FakeClock

pytestmark = pytest.mark.faces

REPO = Path(__file__).resolve().parents[2]
CLIPS = REPO / "tests" / "fixtures" / "clips"


@pytest.fixture(scope="module")
def live_engine() -> FaceEngine:
    return FaceEngine(VisionConfig())  # the default: liveness on


@pytest.fixture(scope="module")
def d18() -> list[np.ndarray]:
    return clip_frames(CLIPS / "driving_d18.mp4", 10.0)


@pytest.fixture(scope="module")
def d19() -> list[np.ndarray]:
    return clip_frames(CLIPS / "driving_d19.mp4", 10.0)


def template_of(engine: FaceEngine, frame: np.ndarray) -> np.ndarray:
    return engine.enroll(frame).encoding[None, :]


def test_liveness_is_on_by_default_and_needs_no_extra_model(live_engine: FaceEngine) -> None:
    assert VisionConfig().liveness is True
    live_engine.warm_up()
    assert set(live_engine.models.loaded) == {"detector", "shape5", "encoder"}
    assert not hasattr(live_engine.models, "shape68")


def test_a_real_clip_of_the_user_is_granted(frame_camera, live_engine, d18) -> None:
    tmpl = template_of(live_engine, d18[0])
    d = live_engine.verify(frame_camera(d18[10:40]), tmpl, clock=FakeClock(0.0, step=0.1))
    assert d.matched and d.reason == "match", d.detail
    assert d.detail["liveness_verdict"] == "motion"
    assert d.frames_seen < 15  # decided well inside the 30-frame budget


def test_a_still_photo_of_the_user_is_refused(frame_camera, live_engine, d18) -> None:
    tmpl = template_of(live_engine, d18[0])
    d = live_engine.verify(frame_camera([d18[12]]), tmpl, clock=FakeClock(0.0, step=0.01))
    assert d.reason == "liveness_failed" and not d.matched
    assert d.distance is not None and d.distance <= live_engine.config.threshold  # the user
    assert d.frames_seen == live_engine.config.liveness_max_frames
    assert d.detail["motion_max"] == 0.0


def test_a_moving_print_is_refused(frame_camera, live_engine, photo) -> None:
    img = photo("people/obama/obama1.jpg")
    tmpl = template_of(live_engine, img)
    frames = handheld(img, 30, seed=zlib.crc32(b"obama1"))
    d = live_engine.verify(frame_camera(frames), tmpl, clock=FakeClock(0.0, step=0.01))
    assert d.reason == "liveness_failed", d.detail
    assert d.detail["motion_max"] < LivenessLimits().motion


@pytest.mark.parametrize("order", ["own face first", "photo first"])
def test_a_live_stranger_swapped_with_the_users_photo_is_refused(
    frame_camera, live_engine, d18, d19, order
) -> None:
    """The visitor's own live face (d19's person) and a still of the user (d18's person) in
    one presentation: the change of face is not the user moving, so nothing counts."""
    tmpl = template_of(live_engine, d18[0])
    assert float(np.linalg.norm(template_of(live_engine, d19[0]) - tmpl)) > 0.6  # two people
    own, photo = d19[5:20], [d18[12]] * 15
    frames = own + photo if order == "own face first" else photo + own
    d = live_engine.verify(frame_camera(frames), tmpl, clock=FakeClock(0.0, step=0.1))
    assert d.reason == "liveness_failed" and not d.matched, d.detail
    assert d.distance is not None and d.distance <= live_engine.config.threshold  # the photo
    assert d.detail["strangers"] > 0


def test_the_frames_seen_while_the_code_is_typed_count(frame_camera, live_engine, d18) -> None:
    """Liveness judged on the frames of the person typing: at the end of the code one frame
    (the match) decides, where the same frames without that evidence need several."""
    tmpl = template_of(live_engine, d18[0])
    watched = live_engine.liveness_check()
    for fr in d18[10:25]:  # 1.5 s of typing at 10 fps
        assert live_engine.observe(watched, fr)
    d = live_engine.verify(
        frame_camera(d18[25:55]), tmpl, clock=FakeClock(0.0, step=0.1), watched=watched
    )
    assert d.matched and d.reason == "match", d.detail
    assert d.frames_seen == 1 and d.detail["watched"] == 15
    cold = live_engine.verify(frame_camera(d18[25:55]), tmpl, clock=FakeClock(0.0, step=0.1))
    assert cold.matched and cold.frames_seen >= 3


def test_watched_moving_frames_are_encoded_only_while_needed(
    frame_camera, live_engine, d18, monkeypatch
) -> None:
    """Binding asks the encoder about the reference and then one watched moving frame at a
    time, only while the verdict still needs one."""
    tmpl = template_of(live_engine, d18[0])
    watched = live_engine.liveness_check()
    for fr in d18[10:25]:
        live_engine.observe(watched, fr)
    assert len(watched._pending) >= 2  # more moving frames were kept than are needed
    calls: list[int] = []
    real = live_engine.encode_probe
    monkeypatch.setattr(live_engine, "encode_probe", lambda c: calls.append(1) or real(c))
    d = live_engine.verify(
        frame_camera(d18[25:55]), tmpl, clock=FakeClock(0.0, step=0.1), watched=watched
    )
    assert d.matched, d.detail
    # the reference and one watched moving frame: the check's first frame (matched, so its
    # identity is known) moves too and is the other one (binding them all eagerly asked 3)
    assert len(calls) == 2, calls


def test_watched_frames_of_someone_else_are_dropped(frame_camera, live_engine, d18, d19) -> None:
    """A stranger's live face while the code is typed, then the user's photo: the watched
    evidence is not the user's and is dropped; the photo alone does not pass."""
    tmpl = template_of(live_engine, d18[0])
    watched = live_engine.liveness_check()
    for fr in d19[5:20]:
        live_engine.observe(watched, fr)
    d = live_engine.verify(
        frame_camera([d18[12]]), tmpl, clock=FakeClock(0.0, step=0.1), watched=watched
    )
    assert d.reason == "liveness_failed" and not d.matched, d.detail
    assert d.detail["watched"] == 0 and d.detail["strangers"] >= 1


def test_a_photo_while_typing_then_a_live_stranger_is_refused(
    frame_camera, live_engine, d18, d19
) -> None:
    tmpl = template_of(live_engine, d18[0])
    watched = live_engine.liveness_check()
    for _ in range(15):
        live_engine.observe(watched, d18[12])  # the user's photo held up while typing
    d = live_engine.verify(
        frame_camera(d19[5:35]), tmpl, clock=FakeClock(0.0, step=0.1), watched=watched
    )
    assert not d.matched, d.detail  # the live face is not the user; the photo never moved


def test_a_clip_replayed_on_a_screen_is_refused(frame_camera, live_engine, d19) -> None:
    tmpl = template_of(live_engine, d19[0])
    assert live_engine.verify(frame_camera(d19[:30]), tmpl, clock=FakeClock(0.0, step=0.1)).matched
    screen = Screen.draw(np.random.default_rng(3))
    shown = list(screen_replay(d19[:30], screen, seed=3))
    d = live_engine.verify(frame_camera(shown), tmpl, clock=FakeClock(0.0, step=0.1))
    assert d.reason == "liveness_failed" and d.detail["liveness_verdict"] in ("screen", "clipped")
    assert d.frames_seen < 30  # a spoof is refused as soon as it is judged


def test_the_spectral_cue_alone_catches_the_screen_grid(live_engine, d19) -> None:
    """Only the moiré of the pixel grid: no glare, no clipping, no bands."""
    screen = Screen.draw(np.random.default_rng(5), glare=False, clip=False, banding=False)
    face = live_engine.detect(d19[0])[0]
    top, right, bottom, left = face.box
    shown = next(screen_replay([d19[0]], screen, seed=5))
    limit = LivenessLimits().peak
    assert peak_ratio(d19[0][top:bottom, left:right]) < limit / 2
    assert peak_ratio(shown[top:bottom, left:right]) > limit


def test_motion_score_is_zero_for_the_same_chip_and_high_for_a_changed_face() -> None:
    rng = np.random.default_rng(0)
    chip = cv2.GaussianBlur(rng.uniform(0, 255, (CHIP, CHIP)).astype(np.float32), (0, 0), 2)
    assert motion_score(chip, chip) == 0.0
    shut = chip.copy()
    shut[30:44, 20:45] = chip.mean()  # an eye closes
    assert motion_score(chip, shut) > LivenessLimits().motion


def test_one_jump_is_not_enough_and_too_few_frames_are_undecided(live_engine, d18) -> None:
    face = live_engine.detect(d18[0])[0]
    pts = live_engine.landmarks5(d18[0], face)
    check = LivenessCheck()
    check.add(d18[0], face.box, pts)
    check.add(d18[0], face.box, pts)
    assert check.verdict().reason == "too_few_frames"
    check.add(d18[0], face.box, pts)
    assert check.verdict().state == "undecided" and check.verdict().reason == "no_motion"
    check.motion.append(50.0)  # one landmark slip
    assert check.verdict().state == "undecided"
    check.motion.append(50.0)
    assert check.verdict().state == "live"


def test_a_face_cut_by_the_frame_edge_proves_nothing(live_engine, d18) -> None:
    """What lies beyond the edge of a photo is not the face: its frames add no motion."""
    face = live_engine.detect(d18[0])[0]
    top, right, bottom, left = face.box
    cut = np.ascontiguousarray(d18[0][:, left + (right - left) // 8 :])  # face at the edge
    f2 = live_engine.detect(cut)[0]
    check = LivenessCheck()
    for _ in range(4):
        check.add(cut, f2.box, live_engine.landmarks5(cut, f2))
    assert check.cut == 4 and check.motion == []
    assert check.verdict().state == "undecided"


# ---- doorward eval-liveness -------------------------------------------------------------------
def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict]]:
    capsys.readouterr()
    rc = main(list(args))
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    return rc, out


def test_eval_liveness_reports_bpcer_and_apcer_per_attack_kind(
    tmp_path: Path, capsys, d18, faces_dir: Path
) -> None:
    clips = tmp_path / "clips"
    (clips / "bona_fide").mkdir(parents=True)
    (clips / "attack" / "photo").mkdir(parents=True)
    for name in ("driving_d18.mp4", "driving_d19.mp4"):
        (clips / "bona_fide" / name).write_bytes((CLIPS / name).read_bytes())
    photo = clips / "attack" / "photo" / "held_up.png"
    cv2.imwrite(str(photo), cv2.cvtColor(d18[5], cv2.COLOR_RGB2BGR))
    rc, out = _run(capsys, "eval-liveness", "--clips", str(clips))
    assert rc == 0
    rows, summary = out[:-1], out[-1]
    assert summary["event"] == "summary"
    assert summary["bona_fide"] == 2 and summary["bpcer"] == 0.0
    assert summary["attacks"] == {"photo": {"n": 1, "apcer": 0.0}}
    by_clip = {r["clip"]: r for r in rows}
    assert by_clip["attack/photo/held_up.png"]["accepted"] is False
    assert by_clip["bona_fide/driving_d18.mp4"]["verdict"] == "live"


def test_eval_liveness_typed_watches_the_first_seconds(tmp_path: Path, capsys, d18) -> None:
    """--typed S: the first S seconds of each clip are watched as while a code is typed; the
    check's own frames follow (a clip that ends before them is refused)."""
    clips = tmp_path / "clips"
    (clips / "bona_fide").mkdir(parents=True)
    (clips / "attack" / "photo").mkdir(parents=True)
    (clips / "bona_fide" / "d18.mp4").write_bytes((CLIPS / "driving_d18.mp4").read_bytes())
    cv2.imwrite(str(clips / "attack" / "photo" / "p.png"), cv2.cvtColor(d18[5], cv2.COLOR_RGB2BGR))
    rc, out = _run(capsys, "eval-liveness", "--clips", str(clips), "--typed", "1.5")
    assert rc == 0
    rows, summary = {r["clip"]: r for r in out[:-1]}, out[-1]
    assert summary["typed_s"] == 1.5 and summary["bpcer"] == 0.0
    assert summary["attacks"] == {"photo": {"n": 1, "apcer": 0.0}}
    live = rows["bona_fide/d18.mp4"]
    assert live["verdict"] == "live" and live["watched"] > 0 and live["frames"] >= 1
    cold = _run(capsys, "eval-liveness", "--clips", str(clips))[1][0]
    assert cold["watched"] == 0 and cold["frames"] > live["frames"]
    (clips / "attack" / "photo" / "p.png").unlink()
    (clips / "attack" / "photo").rmdir()
    (clips / "attack").rmdir()
    rc, out = _run(capsys, "eval-liveness", "--clips", str(clips), "--typed", "8")  # 7.2 s clip
    assert out[0]["verdict"] == "undecided" and out[0]["reason"] == "too_few_frames"


def test_eval_liveness_refuses_a_bad_typed_value(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval-liveness", "--clips", str(tmp_path), "--typed", "-1"])
    assert exc.value.code != 0
    assert "--typed" in capsys.readouterr().err


def test_eval_liveness_refuses_an_unsorted_folder(tmp_path: Path, capsys) -> None:
    clips = tmp_path / "clips"
    (clips / "misc").mkdir(parents=True)
    assert main(["eval-liveness", "--clips", str(clips)]) != 0
    err = capsys.readouterr().err
    assert "'misc' is neither bona_fide/ (or live/) nor attack/" in err


# ---- the check's own pixel operations (numpy; the door does not load OpenCV) -----------------
def _textured_chip(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.uniform(0, 255, (CHIP, CHIP)).astype(np.float32), (0, 0), 2.5)


def test_ecc_recovers_a_known_homography() -> None:
    """A chip seen through a known plane-to-plane mapping (as a tilted photo is): the fitted
    homography is that mapping, within 0.1 px over the face."""
    a = _textured_chip(1)
    h_true = np.array([[1.03, 0.02, -1.5], [-0.015, 0.98, 1.2], [2e-4, -1e-4, 1.0]])
    b = cv2.warpPerspective(a, h_true, (CHIP, CHIP), flags=cv2.INTER_LINEAR)  # b(H x) = a(x)
    mask = liveness._mask()
    found = liveness._ecc_homography(a, b, mask)
    assert found is not None
    yy, xx = np.nonzero(mask)
    pts = np.stack([xx, yy, np.ones_like(xx)]).astype(np.float64)

    def mapped(h: np.ndarray) -> np.ndarray:
        q = h @ pts
        return q[:2] / q[2]

    assert np.abs(mapped(found) - mapped(h_true)).max() < 0.1
    # what the homography explains is not motion: the planar change scores as noise
    assert motion_score(a, b) < LivenessLimits().motion / 4


def test_ecc_gives_up_on_images_that_do_not_correlate() -> None:
    a = _textured_chip(2)
    assert liveness._ecc_homography(a, -a, liveness._mask()) is None


def test_numpy_filters_match_opencv() -> None:
    img = np.random.default_rng(3).uniform(0, 255, (128, 128)).astype(np.float32)
    gauss = cv2.GaussianBlur(img, (0, 0), 6.0)
    assert np.abs(liveness._gaussian(img, 6.0) - gauss).max() < 0.05
    box = cv2.blur(img, (9, 9))
    assert np.abs(liveness._box(img, 9) - box).max() < 1e-3
    assert np.array_equal(liveness._median(box, 5), cv2.medianBlur(box, 5))


def test_the_door_judges_liveness_without_loading_opencv(faces_dir: Path, tmp_path: Path) -> None:
    """A visit with liveness on (a still: the whole frame budget is judged) in a fresh
    process: OpenCV is never imported, so the door does not pay its ~16 MB."""
    script = (
        "import sys\n"
        "from appliance.config import VisionConfig\n"
        "from appliance.vision.engine import FaceEngine\n"
        "from appliance.vision.image import load_image\n"
        "e = FaceEngine(VisionConfig())\n"
        f"t = e.enroll(load_image({str(faces_dir / 'people/obama/obama1.jpg')!r})).encoding\n"
        f"frame = load_image({str(faces_dir / 'people/obama/obama2.jpg')!r})\n"
        "class Cam:\n"
        "    def read(self):\n"
        "        return frame\n"
        "d = e.verify(Cam(), t.reshape(1, 128), liveness=True)\n"
        "assert d.reason == 'liveness_failed', d\n"
        "assert d.detail['frames'] >= 3, d.detail\n"
        "print(sorted(m for m in sys.modules if m == 'cv2' or m.startswith('cv2.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
