"""The face check looks first where the face was a moment ago (`detect_near`), and searches
the whole frame when the face is not found there: the same decisions at a fraction of the
detection work."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from appliance.vision import FaceEngine, Sighting
from appliance.vision.image import darken
from bench.face import camera_frame

pytestmark = pytest.mark.faces

W, H = 1920, 1080  # the default camera frame


@pytest.fixture(scope="module")
def obama(engine: FaceEngine, photo) -> np.ndarray:
    return np.stack([engine.enroll(photo("people/obama/obama1.jpg")).encoding])


@pytest.fixture(scope="module")
def frame(photo) -> np.ndarray:
    return camera_frame(photo("people/obama/obama2.jpg"), W, H)


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ih = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iw = max(0, min(a[1], b[1]) - max(a[3], b[3]))
    area = (a[2] - a[0]) * (a[1] - a[3]) + (b[2] - b[0]) * (b[1] - b[3])
    return ih * iw / (area - ih * iw)


def _moved(box: tuple[int, int, int, int], dx: float, dy: float, scale: float) -> Any:
    top, right, bottom, left = box
    s = right - left
    cx, cy, half = (left + right) / 2 + dx * s, (top + bottom) / 2 + dy * s, s * scale / 2
    return (round(cy - half), round(cx + half), round(cy + half), round(cx - half))


class _Counting:
    """The engine's models with the detector's input sizes recorded."""

    def __init__(self, models: Any) -> None:
        self._models = models
        self.shape5 = models.shape5
        self.encoder = models.encoder
        self.sizes: list[tuple[int, int]] = []

    def detector(self, gray: np.ndarray, upsample: int) -> Any:
        self.sizes.append(gray.shape[:2])
        return self._models.detector(gray, upsample)


def _check(frame_camera, engine, frame, tmpl, box, *, liveness: bool = False) -> Any:
    """One check of `frame` handed a sighting at `box`, with a clock that stands still."""
    near = Sighting(box, False, 0.0)
    cam = frame_camera([frame])
    return engine.verify(cam, tmpl, liveness=liveness, near=near, clock=lambda: 0.0)


def test_a_face_that_moved_a_little_is_found_near_where_it_was(engine, frame) -> None:
    (whole,) = engine.detect(frame)
    for dx, dy, scale in ((0, 0, 1), (0.1, 0, 1), (0, -0.1, 1), (0, 0, 0.9), (-0.1, 0.1, 1.1)):
        near = Sighting(_moved(whole.box, dx, dy, scale), False, 0.0)
        found = engine.detect_near(frame, near)
        assert found is not None, (dx, dy, scale)
        assert _iou(found.box, whole.box) > 0.5 and not found.enhanced
        assert abs(found.size_px - whole.size_px) < 0.25 * whole.size_px
        assert engine.quality_problem(found) is None


def test_looking_near_reads_a_small_window_once(engine, frame) -> None:
    (whole,) = engine.detect(frame)
    models = _Counting(engine.models)
    eng = FaceEngine(engine.config, models)  # type: ignore[arg-type]
    assert eng.detect_near(frame, Sighting(whole.box, False, 0.0)) is not None
    ((h, w),) = models.sizes  # one detector pass, on a window of about 1.5 face widths
    assert w * h < 0.4 * engine.config.detect_width * engine.config.detect_width * H / W


def test_the_check_decides_the_same_near_or_cold(frame_camera, engine, frame, obama) -> None:
    (whole,) = engine.detect(frame)
    cold = engine.verify(frame_camera([frame]), obama, liveness=False)
    near = engine.verify(
        frame_camera([frame]), obama, liveness=False, near=Sighting(whole.box, False, 0.0)
    )
    assert cold.detail["tracked"] == 0 and near.detail["tracked"] == 1
    assert (near.matched, near.reason) == (cold.matched, cold.reason) == (True, "match")
    assert cold.distance is not None and near.distance is not None
    assert abs(near.distance - cold.distance) < 0.03


def test_no_face_near_the_hint_searches_the_whole_frame(frame_camera, engine, frame, obama):
    corner = Sighting((20, 320, 320, 20), False, 0.0)  # grey background: nobody there
    assert engine.detect_near(frame, corner) is None
    d = engine.verify(frame_camera([frame]), obama, liveness=False, near=corner)
    assert (d.matched, d.detail["tracked"]) == (True, 0)


def test_a_face_cut_by_the_window_is_not_taken(engine, frame) -> None:
    """The window around a hint half a face to the side of the face holds only part of it:
    no box from there (a cut face would give a cut box); the whole frame is searched."""
    (whole,) = engine.detect(frame)
    for dx in (-0.5, 0.5):  # HOG would still report a box there, running past the window
        assert engine.detect_near(frame, Sighting(_moved(whole.box, dx, 0, 1), False, 0.0)) is None


def test_someone_else_where_the_user_was_is_a_mismatch(frame_camera, engine, photo, obama) -> None:
    """The hint says where to look, never who is there: the frame's own face decides."""
    user = camera_frame(photo("people/obama/obama2.jpg"), W, H)
    other = camera_frame(photo("people/biden/biden1.jpg"), W, H)
    (seen,) = engine.detect(user)
    d = _check(frame_camera, engine, other, obama, seen.box)
    assert d.reason == "mismatch" and d.distance is not None
    assert d.distance > engine.config.threshold and d.frame is other


def test_a_dark_face_near_the_hint_is_enhanced_as_the_whole_frame_would_be(
    frame_camera, engine, frame, obama
) -> None:
    dark = darken(frame, exposure=0.12, noise_sigma=0.03)
    (whole,) = engine.detect(dark)
    assert whole.enhanced
    found = engine.detect_near(dark, Sighting(whole.box, True, 0.0))
    assert found is not None and found.enhanced and _iou(found.box, whole.box) > 0.5
    d = engine.verify(
        frame_camera([dark]), obama, liveness=False, near=Sighting(whole.box, True, 0.0)
    )
    assert (d.matched, d.detail["tracked"]) == (True, 1)


def test_with_liveness_every_frame_is_searched_whole(frame_camera, engine, frame, obama):
    (whole,) = engine.detect(frame)
    d = _check(frame_camera, engine, frame, obama, whole.box, liveness=True)
    assert d.detail["tracked"] == 0 and d.reason == "liveness_failed"


def test_the_check_follows_the_face_from_frame_to_frame(frame_camera, engine, frame, photo):
    """Cold (no hint), the first frame is searched whole and the next ones near its face."""
    biden = np.stack([engine.enroll(photo("people/biden/biden1.jpg")).encoding])
    d = engine.verify(frame_camera([frame]), biden, liveness=False, clock=lambda: 0.0)
    assert d.reason == "mismatch" and d.frames_seen == engine.config.max_frames
    assert d.detail["tracked"] == engine.config.max_frames - 1
