"""FaceEngine on real photos: enrollment gates, door verification reasons, 1:N identification."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from appliance.config import VisionConfig
from appliance.vision import (
    FaceDecision,
    FaceEngine,
    FaceError,
    MultipleFacesError,
    NoFaceError,
    PoorQualityError,
)
from appliance.vision.image import darken
from tests.support.waiting import FakeClock

pytestmark = pytest.mark.faces


@pytest.fixture(scope="module")
def obama(engine: FaceEngine, photo) -> np.ndarray:
    return np.stack([engine.enroll(photo("people/obama/obama1.jpg")).encoding])


def test_enroll_returns_encoding_quality_and_box(engine: FaceEngine, photo) -> None:
    img = photo("people/biden/biden2.jpg")
    e = engine.enroll(img)
    assert e.encoding.shape == (128,) and e.encoding.dtype == np.float64
    assert 0.5 < e.quality <= 1.0
    top, right, bottom, left = e.box
    assert 0 <= left < right <= img.shape[1] and 0 <= top < bottom <= img.shape[0]
    # the box really is the face: enrolling just that crop (with margin) gives the same person
    crop = img[max(0, top - 100) : bottom + 100, max(0, left - 100) : right + 100]
    assert np.linalg.norm(engine.enroll(np.ascontiguousarray(crop)).encoding - e.encoding) < 0.2


@pytest.mark.parametrize("scene", ["scenes/two_people.jpg", "scenes/kit_with_rose.jpg"])
def test_enroll_rejects_several_faces_naming_the_photo(
    engine: FaceEngine, photo, scene: str
) -> None:
    with pytest.raises(MultipleFacesError, match=r"photo\.jpg: 2 faces found"):
        engine.enroll(photo(scene), name="photo.jpg")


def test_enroll_rejects_no_face(engine: FaceEngine) -> None:
    wall = np.full((480, 640, 3), 200, np.uint8)
    with pytest.raises(NoFaceError, match="wall.png: no face found"):
        engine.enroll(wall, name="wall.png")


def test_enroll_rejects_a_tiny_face(photo) -> None:
    eng = FaceEngine(VisionConfig(min_face_px=200))
    with pytest.raises(PoorQualityError, match="too small"):
        eng.enroll(photo("people/kit_harington/kit1.jpg"))


def test_enroll_rejects_a_blurred_face(engine: FaceEngine, photo) -> None:
    blurred = cv2.GaussianBlur(photo("people/obama/obama2.jpg"), (0, 0), 9)
    with pytest.raises(PoorQualityError, match="too blurred"):
        engine.enroll(blurred)


def test_enroll_rejects_a_non_rgb_array(engine: FaceEngine) -> None:
    with pytest.raises(FaceError, match="expected an RGB uint8 array"):
        engine.enroll(np.zeros((10, 10), np.float32))


def test_own_face_from_another_photo_matches(
    frame_camera, engine: FaceEngine, photo, obama
) -> None:
    cam = frame_camera([photo("people/obama/obama2.jpg")])
    d = engine.verify(cam, obama, liveness=False)
    assert isinstance(d, FaceDecision)
    assert d.matched and d.reason == "match"
    assert d.distance is not None and d.distance <= engine.config.threshold
    assert d.frames_seen == 1 and cam.reads == 1  # stops at the first matching frame
    assert d.frame is cam.frames[0]


def test_someone_else_is_a_mismatch_after_all_frames(
    frame_camera, engine: FaceEngine, photo, obama
) -> None:
    cam = frame_camera([photo("people/biden/biden1.jpg")])
    # a clock that stands still: the frame budget alone ends the check (not window_s, which a
    # loaded machine could use up first)
    d = engine.verify(cam, obama, liveness=False, clock=lambda: 0.0)
    assert not d.matched and d.reason == "mismatch"
    assert d.distance is not None and d.distance > engine.config.threshold
    assert d.frames_seen == engine.config.max_frames


def test_best_frame_is_kept(frame_camera, engine: FaceEngine, photo, obama) -> None:
    wall = np.full((480, 640, 3), 90, np.uint8)
    other = photo("people/biden/biden1.jpg")
    own = photo("people/obama/obama3.jpg")
    d = engine.verify(frame_camera([wall, other, own]), obama, liveness=False)
    assert d.matched and d.frames_seen == 3 and d.frame is own


def test_no_face_in_any_frame(frame_camera, engine: FaceEngine, obama) -> None:
    wall = np.full((480, 640, 3), 90, np.uint8)
    d = engine.verify(frame_camera([wall]), obama, liveness=False)
    assert (d.matched, d.reason, d.distance) == (False, "no_face", None)
    assert d.frame is wall


def test_poor_quality_reason(frame_camera, photo, obama) -> None:
    eng = FaceEngine(VisionConfig(min_face_px=900))
    d = eng.verify(frame_camera([photo("people/obama/obama2.jpg")]), obama, liveness=False)
    assert (d.matched, d.reason) == (False, "poor_quality")
    assert "too small" in d.detail["problem"]


def test_no_templates(frame_camera, engine: FaceEngine, photo) -> None:
    d = engine.verify(frame_camera([photo("people/obama/obama2.jpg")]), np.empty((0, 128)))
    assert (d.matched, d.reason) == (False, "no_templates")


def test_minimum_over_several_templates(frame_camera, engine: FaceEngine, photo, obama) -> None:
    biden = engine.enroll(photo("people/biden/biden1.jpg")).encoding
    both = np.stack([biden, obama[0]])
    d = engine.verify(frame_camera([photo("people/obama/obama2.jpg")]), both, liveness=False)
    alone = engine.verify(frame_camera([photo("people/obama/obama2.jpg")]), obama, liveness=False)
    assert d.matched and d.distance == pytest.approx(alone.distance)


def test_window_bounds_the_frames_read(frame_camera, engine: FaceEngine, photo, obama) -> None:
    cfg = engine.config
    eng = FaceEngine(cfg.replace(max_frames=50, window_s=3.0))
    cam = frame_camera([photo("people/biden/biden1.jpg")])
    d = eng.verify(cam, obama, liveness=False, clock=FakeClock(0.0, step=1.0))
    assert d.reason == "mismatch" and cam.reads < 5


def test_still_photo_fails_liveness(frame_camera, engine: FaceEngine, photo, obama) -> None:
    cam = frame_camera([photo("people/obama/obama2.jpg")])
    # 10 ms a frame on the engine's clock: the window never runs out on a busy machine first
    d = engine.verify(cam, obama, liveness=True, clock=FakeClock(0.0, step=0.01))
    assert not d.matched and d.reason == "liveness_failed"
    assert d.distance is not None and d.distance <= engine.config.threshold
    assert d.frames_seen == engine.config.liveness_max_frames


def test_liveness_none_follows_config(frame_camera, photo, obama) -> None:
    eng = FaceEngine(VisionConfig(liveness=True, liveness_max_frames=4))
    d = eng.verify(frame_camera([photo("people/obama/obama2.jpg")]), obama)
    assert d.reason == "liveness_failed" and d.frames_seen == 4


def test_identify_finds_the_right_label(engine: FaceEngine, photo) -> None:
    people = {
        7: "people/obama/obama1.jpg",
        8: "people/biden/biden1.jpg",
        9: "people/kit_harington/kit1.jpg",
        10: "people/rose_leslie/rose1.jpg",
    }
    labels = list(people)
    gallery = np.stack([engine.enroll(photo(p)).encoding for p in people.values()])
    hit = engine.identify(photo("people/kit_harington/kit2.jpg"), gallery, labels)
    assert hit is not None and hit[0] == 9 and hit[1] <= engine.config.threshold
    assert engine.identify(photo("people/alex_lacamoire/alex2.jpg"), gallery, labels) is None
    assert engine.identify(np.full((100, 100, 3), 50, np.uint8), gallery, labels) is None
    with pytest.raises(ValueError, match="labels"):
        engine.identify(photo("people/kit_harington/kit2.jpg"), gallery, labels[:2])


def test_a_face_frees_the_frame_kept_for_a_faceless_snapshot(
    frame_camera, engine: FaceEngine, photo, obama
) -> None:
    """With a face encoded, the decision's frame is that face's frame, not the empty first one
    (only one full frame is held besides the one being read)."""
    wall = np.full((480, 640, 3), 90, np.uint8)
    own = photo("people/obama/obama3.jpg")
    d = engine.verify(frame_camera([wall, own]), obama, liveness=False)
    assert d.matched and d.frame is own
    d = engine.verify(frame_camera([wall, wall]), obama, liveness=False)
    assert d.reason == "no_face" and d.frame is wall


def _enlarged(img: np.ndarray, width: int) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    size = (width, round(h * width / w))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))


def test_a_large_dark_face_is_found_and_matched(
    frame_camera, engine: FaceEngine, photo, obama
) -> None:
    """A face of about 680 px at 12 % exposure: shrunk to the blur measure's square its sensor
    noise averages out and its raw contrast is tiny, so the untoned measure (about 9 here,
    limit 15) dropped it as too blurred; judged after the tone curve it is encoded and matched."""
    dark = darken(
        _enlarged(photo("people/obama/obama4.jpg"), 2500), exposure=0.12, noise_sigma=0.03
    )
    faces = engine.detect(dark)
    assert len(faces) == 1 and faces[0].enhanced and faces[0].size_px > 600
    assert engine.quality_problem(faces[0]) is None
    d = engine.verify(frame_camera([dark]), obama, liveness=False)
    assert (d.matched, d.reason) == (True, "match")


def test_dark_impostor_stays_a_mismatch(frame_camera, engine: FaceEngine, photo, obama) -> None:
    dark = darken(
        _enlarged(photo("people/biden/biden2.jpg"), 2500), exposure=0.12, noise_sigma=0.03
    )
    d = engine.verify(frame_camera([dark]), obama, liveness=False)
    assert d.reason == "mismatch" and d.distance is not None
    assert d.distance > engine.config.threshold


class _CountingModels:
    """The engine's models with the detector's and the tone curve's calls counted."""

    def __init__(self, models: Any) -> None:
        self._models = models
        self.detector_calls: list[tuple[int, int]] = []  # (width of the image, upsample)
        self.shape5 = models.shape5
        self.encoder = models.encoder

    def detector(self, gray: np.ndarray, upsample: int) -> Any:
        self.detector_calls.append((gray.shape[1], upsample))
        return self._models.detector(gray, upsample)


def test_a_normal_frame_takes_one_small_detector_pass_and_no_dark_work(
    engine: FaceEngine, photo, monkeypatch: pytest.MonkeyPatch
) -> None:
    import appliance.vision.engine as engine_mod

    toned: list[tuple[int, ...]] = []
    real_tone = engine_mod.tone_gray
    monkeypatch.setattr(engine_mod, "tone_gray", lambda g: toned.append(g.shape) or real_tone(g))
    models = _CountingModels(engine.models)
    eng = FaceEngine(engine.config, models)  # type: ignore[arg-type]
    frame = photo("people/obama/obama3.jpg")  # 1434 px wide, normal light
    faces = eng.detect(frame)
    assert len(faces) == 1 and not faces[0].enhanced
    assert models.detector_calls == [(engine.config.detect_width, 0)] and toned == []
    # the same frame at 12 %: the same first pass, then the dark face's toned blur measure
    models.detector_calls.clear()
    faces = eng.detect(darken(frame, exposure=0.12, noise_sigma=0.03))
    assert len(faces) == 1 and faces[0].enhanced
    assert models.detector_calls[0] == (engine.config.detect_width, 0) and len(toned) == 1


def test_two_threads_detecting_at_once_get_their_own_faces(engine: FaceEngine, photo) -> None:
    """The door's watcher and the admin page's enrollment share the process's one detector;
    dlib's scans it with the GIL released, and unserialised the two got each other's boxes."""
    import threading

    frames = [
        photo(p)
        for p in ("people/obama/obama2.jpg", "people/biden/biden1.jpg", "scenes/two_people.jpg")
    ]
    expected = [[f.box for f in engine.detect(fr)] for fr in frames]
    wrong: list[int] = []

    def run(k: int) -> None:
        for i in range(40):
            j = (i + k) % len(frames)
            if [f.box for f in engine.detect(frames[j])] != expected[j]:
                wrong.append(j)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
