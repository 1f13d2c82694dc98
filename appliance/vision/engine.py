"""Owns the door's face check: detect small, encode the full-resolution crop, match, decide."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import MultipleFacesError, NoFaceError, PoorQualityError
from .image import (
    check_frame,
    enhance_gray,
    enhance_rgb,
    is_low_light,
    reduce_rgb,
    shrink,
    to_gray,
    tone_gray,
)
from .liveness import LivenessCheck, LivenessLimits, LivenessVerdict
from .models import Models, shared_models
from .resnet import CHIP_SIZE

if TYPE_CHECKING:
    from appliance.config import VisionConfig
    from appliance.hardware.camera.base import Camera

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # top, right, bottom, left (face_recognition's order)
ENROLL_DETECT_WIDTH = 800  # enrollment looks harder for a second face than the door does
THOROUGH_MAX_WIDTH = 1700  # enrollment's extra passes stop at this effective width
SHARPNESS_SIZE = 96  # faces are resized to this square before the blur measure
# A dark frame's face crop is area-averaged down to about this face size before the encoder
# (whose chip is 150 px for about 1.5 face widths): its sensor noise averages out instead of
# being sampled point by point into the chip.
DARK_FACE_PX = 160
# A face seen a moment ago (by the watcher while the code was typed, or in the check's own
# previous frame) is looked for first in a window around where it was: NEAR_MARGIN face
# widths on each side, scaled so the face is about NEAR_FACE_PX there (HOG finds faces from
# 80 px; this leaves room for the face to move back a little). Found nowhere near it (or cut
# by the window's edge), the whole frame is searched as before.
NEAR_FACE_PX = 100
NEAR_MARGIN = 0.25


@dataclass(frozen=True)
class Enrollment:
    """The result of enrolling one photo."""

    encoding: np.ndarray  # (128,) float64
    quality: float  # 0..1, higher is better (face size and sharpness)
    box: Box  # top, right, bottom, left in the given image


@dataclass
class FaceDecision:
    """The outcome of one face check at the door."""

    matched: bool
    distance: float | None
    reason: str  # match | mismatch | no_face | poor_quality | liveness_failed | no_templates
    frame: np.ndarray | None
    frames_seen: int
    ms: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sighting:
    """Where a face was a moment ago, and whether its frame was dark (enhanced)."""

    box: Box
    enhanced: bool
    at: float  # time.monotonic() of its frame


@dataclass(frozen=True)
class FaceFound:
    """One detected face in full-resolution coordinates, with its quality measures."""

    box: Box
    size_px: int
    sharpness: float
    enhanced: bool

    @property
    def quality(self) -> float:
        return round(
            0.5 * min(self.size_px / 200.0, 1.0) + 0.5 * min(self.sharpness / 150.0, 1.0), 4
        )


def _rect(box: Box, dx: int = 0, dy: int = 0) -> Any:
    import dlib

    top, right, bottom, left = box
    return dlib.rectangle(left - dx, top - dy, right - dx, bottom - dy)


def sharpness(gray: np.ndarray, box: Box, *, toned: bool = False) -> float:
    """Variance of the Laplacian of the face, resized to a fixed square (size-independent).
    `toned` (dark frames): measured after the dark-frame tone curve of the face itself, so a
    dark face is judged on its detail, not on its low contrast (a large dark face, its noise
    averaged out by the resize, otherwise measured as blurred)."""
    top, right, bottom, left = box
    face = gray[max(top, 0) : bottom, max(left, 0) : right]
    if face.size == 0:
        return 0.0
    small = shrink(face, SHARPNESS_SIZE, SHARPNESS_SIZE)
    if toned:
        small = tone_gray(small)
    f = small.astype(np.float64)
    p = np.pad(f, 1, mode="reflect")
    lap = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4.0 * f
    return float(lap.var())


def face_distances(templates: np.ndarray, encoding: np.ndarray) -> np.ndarray:
    """Euclidean distance from `encoding` to every row of `templates`."""
    diff = templates - encoding
    return np.sqrt(np.einsum("ij,ij->i", diff, diff))


def aligned_chip(image: np.ndarray, shape: Any) -> np.ndarray:
    """The encoder's input: dlib's aligned 150 x 150 face chip from the 5 points `shape` in
    `image`, cut as dlib's own encoder cuts it (padding 0.25)."""
    import dlib

    return np.asarray(dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=0.25))


class FaceEngine:
    """Face enrollment, 1:1 verification at the door and 1:N identification.

    Models load on first use, once per process: the detector, the 5-point predictor and the
    encoder (liveness uses the same detector and 5-point landmarks; no further model).
    """

    def __init__(self, config: VisionConfig, models: Models | None = None) -> None:
        self.config = config
        self.models = models or shared_models()
        self._encode_lock = threading.Lock()

    def _descriptor(self, image: np.ndarray, shape: Any = None) -> np.ndarray:
        """One encoder pass under the encode lock. `shape` (dlib's 5 points in `image`): the
        aligned chip is cut first, as dlib's own encoder cuts it; None: `image` is the chip.
        The pass runs in numpy's BLAS with the GIL released (appliance/vision/resnet.py),
        so the keypad's scan thread and the relay's timers run through it."""
        encoder = self.models.encoder
        with self._encode_lock:
            if shape is not None:
                image = aligned_chip(image, shape)
            return encoder.descriptor(image)

    # ---- building blocks ----------------------------------------------------------------------
    def warm_up(self, liveness: bool | None = None) -> None:
        """Load the models the configured checks need (call at start-up, not at the door)."""
        _ = self.models.detector, self.models.shape5, self.models.encoder

    def detect(
        self, image: np.ndarray, *, width: int | None = None, thorough: bool = False
    ) -> list[FaceFound]:
        """Faces in `image`, largest first. Detection runs on a copy downscaled to `width`
        (default config.detect_width) with upsample 0; only when nothing is found do the finer
        passes of `_passes` run (twice that width, then upsampled once). Dark or flat frames
        are enhanced first when enhance_low_light is on.
        `thorough` runs both passes and keeps the one that found more faces (enrollment).
        """
        image = check_frame(image)
        h, w = image.shape[:2]
        target = width or self.config.detect_width
        # Grey first: converting the full frame then shrinking one channel costs about half of
        # shrinking three channels, and the same grey frame serves every pass and the blur
        # measure of the face.
        full_gray = to_gray(image)
        enhanced: bool | None = None
        rects: list[Any] = []
        best_scale = 1.0
        for i, (scale, upsample) in enumerate(self._passes(w, target)):
            if i and thorough and w * scale * 2**upsample > THOROUGH_MAX_WIDTH:
                break
            gray = (
                full_gray
                if scale >= 1.0
                else shrink(full_gray, max(1, round(w * scale)), max(1, round(h * scale)))
            )
            if enhanced is None:
                enhanced = self.config.enhance_low_light and is_low_light(gray)
            if enhanced:
                gray = enhance_gray(gray)
            found = list(self.models.detector(gray, upsample))
            if len(found) > len(rects) or not rects:
                rects, best_scale = found, scale
            if rects and not thorough:
                break
        scale = best_scale
        enhanced = bool(enhanced)
        faces = []
        for r in rects:
            box = (
                max(0, int(round(r.top() / scale))),
                min(w, int(round((r.right() + 1) / scale))),
                min(h, int(round((r.bottom() + 1) / scale))),
                max(0, int(round(r.left() / scale))),
            )
            size = min(box[1] - box[3], box[2] - box[0])
            if size <= 0:
                continue
            faces.append(FaceFound(box, size, sharpness(full_gray, box, toned=enhanced), enhanced))
        faces.sort(key=lambda f: f.size_px, reverse=True)
        return faces

    def detect_near(self, image: np.ndarray, near: Sighting) -> FaceFound | None:
        """The face of `near` in this frame, looked for only in a window around its box
        (NEAR_MARGIN face widths each side, scaled so the face is about NEAR_FACE_PX): a
        fraction of a whole-frame search. None when no face lies wholly inside the window
        (the face moved or changed size too much, or someone left): search the whole frame.
        The frame's darkness is the sighting's (judged on its whole frame), so a dark face is
        enhanced as the whole-frame search would enhance it."""
        h, w = image.shape[:2]
        top, right, bottom, left = near.box
        size = max(bottom - top, right - left)
        if size <= 0:
            return None
        m = int(round(NEAR_MARGIN * size))
        y0, y1 = max(0, top - m), min(h, bottom + m)
        x0, x1 = max(0, left - m), min(w, right + m)
        if y1 - y0 < 16 or x1 - x0 < 16:
            return None
        gray = to_gray(image[y0:y1, x0:x1])
        scale = min(1.0, NEAR_FACE_PX / size)
        sw, sh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
        small = gray if scale >= 1.0 else shrink(gray, sw, sh)
        enhanced = near.enhanced and self.config.enhance_low_light
        if enhanced:
            small = enhance_gray(small)
        sy, sx = (y1 - y0) / small.shape[0], (x1 - x0) / small.shape[1]
        edge = 1  # px of the detection copy: a box touching the window's edge may be cut
        best: FaceFound | None = None
        for r in self.models.detector(small, 0):
            cut = (
                (r.left() < edge and x0 > 0)
                or (r.top() < edge and y0 > 0)
                or (r.right() >= small.shape[1] - edge and x1 < w)
                or (r.bottom() >= small.shape[0] - edge and y1 < h)
            )
            if cut:
                continue
            box = (
                max(0, y0 + int(round(r.top() * sy))),
                min(w, x0 + int(round((r.right() + 1) * sx))),
                min(h, y0 + int(round((r.bottom() + 1) * sy))),
                max(0, x0 + int(round(r.left() * sx))),
            )
            face_px = min(box[1] - box[3], box[2] - box[0])
            if face_px <= 0 or (best is not None and face_px <= best.size_px):
                continue
            local = (box[0] - y0, box[1] - x0, box[2] - y0, box[3] - x0)
            best = FaceFound(box, face_px, sharpness(gray, local, toned=enhanced), enhanced)
        return best

    @staticmethod
    def _passes(w: int, target: int) -> list[tuple[float, int]]:
        """(scale, upsample) detection passes, cheapest first: the frame at `target` px wide,
        then at twice that (or native size), then native size upsampled once."""
        s1 = min(1.0, target / w)
        s2 = min(1.0, 2 * target / w)
        passes = [(s1, 0)]
        if s2 > s1 * 1.5:
            passes.append((s2, 0))
        passes.append((s2, 1))
        return passes

    def quality_problem(self, face: FaceFound) -> str | None:
        if face.size_px < self.config.min_face_px:
            return f"face is too small ({face.size_px}px < {self.config.min_face_px}px)"
        if face.sharpness < self.config.min_sharpness:
            limit = self.config.min_sharpness
            return f"face is too blurred (sharpness {face.sharpness:.1f} < {limit})"
        return None

    def _crop(self, image: np.ndarray, box: Box, enhance: bool) -> tuple[np.ndarray, int, int]:
        h, w = image.shape[:2]
        top, right, bottom, left = box
        m = max(bottom - top, right - left) // 2
        y0, y1 = max(0, top - m), min(h, bottom + m)
        x0, x1 = max(0, left - m), min(w, right + m)
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        if enhance:
            crop = enhance_rgb(crop)
        return crop, x0, y0

    def encoder_input(self, image: np.ndarray, face: FaceFound) -> tuple[np.ndarray, Any]:
        """The crop the encoder reads and the face's rectangle in it. A dark (enhanced) face
        is area-averaged down to about DARK_FACE_PX first, then toned; a normal one is the
        full-resolution crop, untouched."""
        if not face.enhanced:
            crop, x0, y0 = self._crop(image, face.box, False)
            return crop, _rect(face.box, x0, y0)
        crop, x0, y0 = self._crop(image, face.box, False)
        k = max(1, face.size_px // DARK_FACE_PX)
        crop = enhance_rgb(reduce_rgb(crop, k))
        top, right, bottom, left = face.box
        box = ((top - y0) // k, (right - x0) // k, (bottom - y0) // k, (left - x0) // k)
        return crop, _rect(box)

    def encode(self, image: np.ndarray, face: FaceFound) -> np.ndarray:
        """One encoder pass: 5-point landmarks and the 128-d encoding from the face's crop."""
        crop, rect = self.encoder_input(image, face)
        with self._encode_lock:
            shape = self.models.shape5(crop, rect)
        return np.asarray(self._descriptor(crop, shape), dtype=np.float64)

    def landmarks5(self, image: np.ndarray, face: FaceFound) -> np.ndarray:
        """dlib's 5 points (two corners per eye, nose base) in frame coordinates, (5, 2)."""
        crop, x0, y0 = self._crop(image, face.box, face.enhanced)
        with self._encode_lock:
            shape = self.models.shape5(crop, _rect(face.box, x0, y0))
        pts = [(shape.part(i).x + x0, shape.part(i).y + y0) for i in range(5)]
        return np.array(pts, dtype=np.float64)

    def probe(self, image: np.ndarray, face: FaceFound) -> np.ndarray:
        """The encoder's own aligned 150 x 150 face chip: what `encode_probe` turns into the
        same encoding as `encode` (kept while a code is typed, encoded once it is known)."""
        crop, rect = self.encoder_input(image, face)
        with self._encode_lock:
            shape = self.models.shape5(crop, rect)
        return aligned_chip(crop, shape)

    def encode_probe(self, chip: np.ndarray) -> np.ndarray:
        return np.asarray(self._descriptor(chip), dtype=np.float64)

    def liveness_check(self) -> LivenessCheck:
        return LivenessCheck(self.liveness_limits())

    def observe(self, check: LivenessCheck | None, image: np.ndarray) -> Sighting | None:
        """Watch a frame before the user is known (while the code is typed; no encoder pass
        here): where its usable face is, or None. With a liveness `check`, that face is
        also judged for liveness."""
        image = check_frame(image, "camera frame")
        faces = self.detect(image)
        if not faces or self.quality_problem(faces[0]):
            return None
        face = faces[0]
        if check is not None:
            points = self.landmarks5(image, face)
            check.watch(image, face.box, points, lambda: self.probe(image, face))
        return Sighting(face.box, face.enhanced, time.monotonic())

    # ---- public API -------------------------------------------------------------------------
    def enroll(self, image: np.ndarray, *, name: str = "image") -> Enrollment:
        """Exactly one adequate face, else NoFaceError / MultipleFacesError / PoorQualityError."""
        image = check_frame(image, name)
        faces = self.detect(
            image, width=max(ENROLL_DETECT_WIDTH, self.config.detect_width), thorough=True
        )
        if not faces:
            raise NoFaceError(f"{name}: no face found")
        if len(faces) > 1:
            raise MultipleFacesError(
                f"{name}: {len(faces)} faces found; the photo must show one person"
            )
        face = faces[0]
        problem = self.quality_problem(face)
        if problem:
            raise PoorQualityError(f"{name}: {problem}")
        encoding = self.encode(image, face)
        return Enrollment(encoding=encoding, quality=face.quality, box=face.box)

    def verify(
        self,
        camera: Camera,
        templates: np.ndarray,
        *,
        liveness: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        watched: LivenessCheck | None = None,
        near: Sighting | None = None,
    ) -> FaceDecision:
        """1:1 check of the person in front of `camera` against ONE user's templates (n, 128).

        Reads frames until a match (and, with liveness, a `live` verdict of the
        LivenessCheck; a `spoof` verdict ends the check at once) or until the frame budget
        (max_frames, or liveness_max_frames with liveness) or window_s runs out. Keeps the
        best (closest) face; the decision's frame is that face's frame (the event snapshot).
        Every frame is read after the call and decides on its own face. Without liveness,
        `near` (where the watcher last saw a face while the code was typed) and each frame's
        face for the next frame say where to look first (`detect_near`). With liveness every
        frame is searched whole, as the watched frames were: the liveness cues compare
        landmarks from frame to frame, and a box found the other way would shift them.
        """
        cfg = self.config
        live = cfg.liveness if liveness is None else liveness
        start = clock()
        tmpl = (
            np.asarray(templates, dtype=np.float64).reshape(-1, 128)
            if np.size(templates)
            else np.empty((0, 128))
        )
        if tmpl.shape[0] == 0:
            frame = camera.read()
            ms = (clock() - start) * 1000.0
            return FaceDecision(False, None, "no_templates", frame, 1, ms)

        budget = cfg.liveness_max_frames if live else cfg.max_frames
        best_d: float | None = None
        best_frame: np.ndarray | None = None
        fallback_frame: np.ndarray | None = None
        poor: str | None = None

        def distance(encoding: np.ndarray) -> float:
            return float(face_distances(tmpl, encoding).min())

        check: LivenessCheck | None = None
        if live:
            near = None  # every frame searched whole (see above)
            check = watched if watched is not None else self.liveness_check()
            check.bind(lambda chip: distance(self.encode_probe(chip)) <= cfg.threshold)
        verdict: LivenessVerdict | None = None
        seen = tracked = 0
        while seen < budget and (seen == 0 or clock() - start < cfg.window_s):
            frame = check_frame(camera.read(), "camera frame")
            seen += 1
            if fallback_frame is None and best_frame is None:
                fallback_frame = frame
            found = self.detect_near(frame, near) if near is not None else None
            tracked += found is not None
            faces = [found] if found is not None else self.detect(frame)
            if not faces:
                near = None
                continue
            face = faces[0]
            if not live:
                near = Sighting(face.box, face.enhanced, clock())
            problem = self.quality_problem(face)
            if problem:
                poor = problem
                if best_frame is None:
                    fallback_frame = frame
                continue
            matched = best_d is not None and best_d <= cfg.threshold
            d: float | None = None
            if not matched:
                d = distance(self.encode(frame, face))
                if best_d is None or d < best_d:
                    best_d, best_frame = d, frame
                    fallback_frame = None  # only needed while no face was encoded
            if check is not None:

                def is_user(
                    d: float | None = d, frame: np.ndarray = frame, face: FaceFound = face
                ) -> bool:
                    # this frame's face against the user's templates (encoded only if the
                    # match above did not already)
                    if d is None:
                        d = distance(self.encode(frame, face))
                    return d <= cfg.threshold

                check.add(frame, face.box, self.landmarks5(frame, face), is_user)
                verdict = check.verdict()
                if verdict.state == "spoof":
                    break
            matched = best_d is not None and best_d <= cfg.threshold
            if matched and (verdict is None or verdict.state == "live"):
                break

        ms = (clock() - start) * 1000.0
        detail: dict[str, Any] = {"liveness": live, "tracked": tracked}
        if verdict is not None:
            detail["liveness_verdict"] = verdict.reason
            detail.update(verdict.detail)
        if best_d is None:
            reason = "poor_quality" if poor else "no_face"
            if poor:
                detail["problem"] = poor
            return FaceDecision(False, None, reason, fallback_frame, seen, ms, detail)
        if best_d > cfg.threshold:
            return FaceDecision(False, best_d, "mismatch", best_frame, seen, ms, detail)
        if live and (verdict is None or verdict.state != "live"):
            return FaceDecision(False, best_d, "liveness_failed", best_frame, seen, ms, detail)
        return FaceDecision(True, best_d, "match", best_frame, seen, ms, detail)

    def liveness_limits(self) -> LivenessLimits:
        return LivenessLimits()

    def encode_largest(self, image: np.ndarray) -> np.ndarray | None:
        """The encoding of the largest adequate face in `image`, or None."""
        faces = self.detect(image)
        if not faces or self.quality_problem(faces[0]):
            return None
        return self.encode(image, faces[0])

    def identify(
        self, image: np.ndarray, gallery: np.ndarray, labels: Sequence[int]
    ) -> tuple[int, float] | None:
        """1:N: the label of the closest template to the largest face, if within threshold."""
        if len(labels) != len(gallery):
            raise ValueError(f"gallery has {len(gallery)} templates but {len(labels)} labels")
        if len(gallery) == 0:
            return None
        encoding = self.encode_largest(image)
        if encoding is None:
            return None
        return nearest(gallery, labels, encoding, self.config.threshold)


def nearest(
    gallery: np.ndarray, labels: Sequence[int], encoding: np.ndarray, threshold: float
) -> tuple[int, float] | None:
    """Vectorised nearest template: (label, distance) when within threshold, else None."""
    d = face_distances(gallery, encoding)
    i = int(np.argmin(d))
    dist = float(d[i])
    return (int(labels[i]), dist) if dist <= threshold else None
