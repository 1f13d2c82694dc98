"""Owns the door's liveness check: is the face in front of the camera a live person, or a
photo, a print, or a clip replayed on a screen?

Built only on what the face check already loads (no extra model, no extra licence): the HOG
detector's box and dlib's 5-point landmarks (trained on dlib's own CC0 data set). Two cues:

- **Non-rigid motion.** A photo or a print is one flat sheet: however it is held, frame N is
  frame 1 seen through a plane-to-plane mapping (a homography). A live face is not: eyes
  move and blink, the mouth and cheeks move, the head turns in 3D (the nose moves against the
  cheeks). Each frame's face is aligned on the 5 landmarks, then registered on the first
  frame by a homography (OpenCV's ECC, photometrically invariant); what the homography cannot
  explain, smoothed so that sensor noise cancels, is the non-rigid motion. A live face shows
  it within a few frames; a still shows none; a moving print shows only noise.
- **Screen cues.** A clip replayed on a phone or a monitor does move like a face, so the face
  crop (full resolution, not resampled) is also checked for what a camera sees when it films a
  screen: moiré and refresh banding (narrow, isolated peaks in the crop's spectrum, which a
  real face's smooth 1/f spectrum does not have) and brightness clipping / glare (a share of
  the face burnt to white).

The verdict for a visit is `live` once enough motion was seen over at least `min_frames`
frames and the screen cues stayed below their limits in most frames; `spoof` when the screen
cues fired; otherwise `undecided` (the door reads more frames, up to its budget, and then
denies for liveness). Figures and the way they were set: docs/BENCHMARKS.md "Liveness".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

CHIP = 96  # aligned face chip side (px) used for the motion cue
SPECTRUM_SIZE = 128  # the face crop is tiled/cut to this square for the spectrum (no resampling)
MIN_FRAMES = 3  # frames with a face before the motion cue can pass


@dataclass(frozen=True)
class LivenessLimits:
    """Decision limits. Defaults set from the figures in docs/BENCHMARKS.md "Liveness"."""

    motion: float = 8.0  # non-rigid motion score a live face exceeds in `moving` frames
    moving: int = 2  # frames above `motion` (one alone may be a landmark slip)
    peak: float = 8.0  # spectral peak ratio above which a crop looks like a filmed screen
    clipped: float = 0.25  # share of the face's pixels burnt to white (any channel >= 250)
    margin: float = 0.1  # the face box, grown by this share of its size, must lie in the frame
    min_frames: int = MIN_FRAMES


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _chip_transform(points: np.ndarray) -> np.ndarray:
    """2x3 similarity mapping the face (5 points: two corners per eye, nose base) into a
    CHIP x CHIP square: eye centres level, 0.3 CHIP apart, nose below their midpoint."""
    right = points[0:2].mean(axis=0)
    left = points[2:4].mean(axis=0)
    mid = (right + left) / 2.0
    vec = right - left
    dist = float(np.hypot(*vec)) or 1.0
    angle = float(np.degrees(np.arctan2(vec[1], vec[0])))
    scale = 0.3 * CHIP / dist
    m = cv2.getRotationMatrix2D((float(mid[0]), float(mid[1])), angle, scale)
    m[0, 2] += CHIP / 2.0 - mid[0]
    m[1, 2] += 0.38 * CHIP - mid[1]
    return m


def face_chip(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The aligned grey face chip (float32, CHIP x CHIP) from a full frame and its 5 points.

    Only a square around the eyes is converted and blurred (never the whole frame: a 1080p
    frame's grey copy and blur would cost the door ~4 MB per frame); it covers the chip at
    any rotation, plus the blur's reach, so the chip is the same as from the whole frame."""
    right = points[0:2].mean(axis=0)
    left = points[2:4].mean(axis=0)
    dist = float(np.hypot(*(right - left))) or 1.0
    shrink = 0.3 * CHIP / dist
    sigma = 0.5 / shrink if shrink < 0.5 else 0.0
    mid = (right + left) / 2.0
    half = int(np.ceil(0.75 * CHIP / shrink + 4.0 * sigma + 2))  # chip diagonal / 2 < 0.71 CHIP
    h, w = frame.shape[:2]
    x0, y0 = max(0, int(mid[0]) - half), max(0, int(mid[1]) - half)
    x1, y1 = min(w, int(mid[0]) + half), min(h, int(mid[1]) + half)
    gray = _gray(frame[y0:y1, x0:x1])
    if sigma:  # pre-blur against aliasing when the chip is much smaller than the face
        gray = cv2.GaussianBlur(gray, (0, 0), sigma)
    m = _chip_transform(points - np.array([x0, y0], dtype=np.float64))
    chip = cv2.warpAffine(gray, m, (CHIP, CHIP), flags=cv2.INTER_LINEAR, borderValue=0)
    return chip.astype(np.float32)


_MASKS: dict[str, np.ndarray] = {}


def _ellipse_mask(parts: list[tuple[float, float, float, float]]) -> np.ndarray:
    m = np.zeros((CHIP, CHIP), np.uint8)
    for cx, cy, ax, ay in parts:
        centre = (round(cx * CHIP), round(cy * CHIP))
        axes = (round(ax * CHIP), round(ay * CHIP))
        cv2.ellipse(m, centre, axes, 0, 0, 360, 1, -1)
    return m


def _mask(name: str = "face") -> np.ndarray:
    """Chip masks. "face": the inner face ellipse (eyes to chin, no hair or background), where
    the homography is fitted. "live": the eyes and the mouth, where life shows (blinks, gaze,
    speech, expressions) and where the edge of a cut-out print or the background behind it
    never is while the 5 landmarks are found."""
    if name not in _MASKS:
        if name == "face":
            m = _ellipse_mask([(0.5, 0.52, 0.3, 0.4)])
        else:
            iod = 0.3  # eye centres are 0.3 CHIP apart at y = 0.38 CHIP
            m = _ellipse_mask(
                [
                    (0.5 - iod / 2, 0.38, 0.33 * iod, 0.25 * iod),
                    (0.5 + iod / 2, 0.38, 0.33 * iod, 0.25 * iod),
                    (0.5, 0.38 + 1.15 * iod, 0.5 * iod, 0.25 * iod),
                ]
            )
        _MASKS[name] = m
    return _MASKS[name]


def _normalise(chip: np.ndarray) -> np.ndarray:
    vals = chip[_mask().astype(bool)]
    sd = float(vals.std()) or 1.0
    return (chip - float(vals.mean())) / sd


def motion_score(ref: np.ndarray, chip: np.ndarray) -> float:
    """Non-rigid change between two aligned chips, in units of 1/100 of the face's contrast.

    `chip` is registered on `ref` by a homography fitted over the inner face (what any flat
    sheet allows); the absolute residual is smoothed (sensor noise averages out, moving
    features do not) and its 90th percentile over the eyes and the mouth is the score. 0 for
    identical chips."""
    a = _normalise(ref)
    b = _normalise(chip)
    warp = np.eye(3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
    try:
        _, found = cv2.findTransformECC(a, b, warp, cv2.MOTION_HOMOGRAPHY, criteria, _mask(), 5)
        warp = np.asarray(found, dtype=np.float32)
        b = np.asarray(
            cv2.warpPerspective(
                b, warp, (CHIP, CHIP), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
            ),
            dtype=np.float32,
        )
    except cv2.error:
        pass  # no convergence: compare as aligned by the landmarks
    diff = cv2.GaussianBlur(np.abs(a - b), (0, 0), 2.0)
    return float(np.percentile(diff[_mask("live").astype(bool)], 90)) * 25.0


def _face_region(frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The inner 70 % of the face box at full resolution (forehead to chin, cheek to cheek)."""
    top, right, bottom, left = box
    h, w = bottom - top, right - left
    y0, y1 = max(0, top + int(0.15 * h)), min(frame.shape[0], bottom - int(0.15 * h))
    x0, x1 = max(0, left + int(0.15 * w)), min(frame.shape[1], right - int(0.15 * w))
    return frame[y0:y1, x0:x1]


def peak_ratio(region: np.ndarray) -> float:
    """How much the strongest narrow spectral peak of the face stands above its surroundings.

    The grey face (full resolution, no resampling, detrended by a wide blur) is windowed and
    transformed; each magnitude in the band 1/32..1/2 cycles per pixel is divided by the
    median of a 9x9 neighbourhood of the spectrum. Periodic patterns (moiré from a screen's
    pixel grid, refresh bands) make isolated peaks far above it; a face, its edges and sensor
    noise do not. The band starts above the slow shading of a face."""
    g = _gray(region).astype(np.float32) if region.ndim == 3 else region.astype(np.float32)
    n = min(g.shape[0], g.shape[1], SPECTRUM_SIZE)
    if n < 32:
        return 0.0
    cy, cx = g.shape[0] // 2, g.shape[1] // 2
    g = g[cy - n // 2 : cy - n // 2 + n, cx - n // 2 : cx - n // 2 + n]
    g = g - cv2.GaussianBlur(g, (0, 0), 6.0)
    win = np.outer(np.hanning(n), np.hanning(n)).astype(np.float32)
    spec = np.abs(np.fft.fftshift(np.fft.fft2(g * win))).astype(np.float32)
    local = cv2.blur(spec, (9, 9))  # mean first (fast), then a median of means
    local = cv2.medianBlur(local, 5)
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(yy - n // 2, xx - n // 2) / n  # cycles per pixel
    band = (r >= 1.0 / 32.0) & (r <= 0.5)
    ratio = spec[band] / (local[band] + 1e-3)
    return float(ratio.max()) if ratio.size else 0.0


def clipped_share(region: np.ndarray) -> float:
    """Share of the face's pixels with any channel at 250 or more (burnt highlights, glare)."""
    if region.size == 0:
        return 0.0
    return float((region.max(axis=2) >= 250).mean()) if region.ndim == 3 else 0.0


@dataclass
class LivenessVerdict:
    state: str  # live | spoof | undecided
    reason: str  # motion | screen | clipped | no_motion | too_few_frames
    detail: dict[str, Any] = field(default_factory=dict)


class LivenessCheck:
    """Collects one visit's frames (frame + face box + 5 landmarks) and judges them."""

    def __init__(self, limits: LivenessLimits | None = None) -> None:
        self.limits = limits or LivenessLimits()
        self._ref: np.ndarray | None = None
        self.motion: list[float] = []
        self.peaks: list[float] = []
        self.clipped: list[float] = []
        self.cut = 0  # frames whose face touched the frame's edge

    @property
    def frames(self) -> int:
        return len(self.peaks)

    def add(self, frame: np.ndarray, box: tuple[int, int, int, int], points: np.ndarray) -> None:
        region = _face_region(frame, box)
        self.peaks.append(peak_ratio(region))
        self.clipped.append(clipped_share(region))
        if not self.in_view(frame, box):
            # a face cut by the frame's edge (or a photo's): what lies beyond it is not the
            # face, and its motion proves nothing
            self.cut += 1
            return
        chip = face_chip(frame, np.asarray(points, dtype=np.float64))
        if self._ref is None:
            self._ref = chip
        else:
            self.motion.append(motion_score(self._ref, chip))

    def in_view(self, frame: np.ndarray, box: tuple[int, int, int, int]) -> bool:
        top, right, bottom, left = box
        m = self.limits.margin * max(bottom - top, right - left)
        h, w = frame.shape[:2]
        return top - m >= 0 and left - m >= 0 and bottom + m <= h and right + m <= w

    def verdict(self) -> LivenessVerdict:
        lim = self.limits
        detail = {
            "frames": self.frames,
            "cut": self.cut,
            "motion_max": round(max(self.motion), 2) if self.motion else 0.0,
            "peak_median": round(float(np.median(self.peaks)), 2) if self.peaks else 0.0,
            "clipped_median": round(float(np.median(self.clipped)), 3) if self.clipped else 0.0,
        }
        if self.frames >= lim.min_frames and detail["peak_median"] > lim.peak:
            return LivenessVerdict("spoof", "screen", detail)
        if self.frames >= lim.min_frames and detail["clipped_median"] > lim.clipped:
            return LivenessVerdict("spoof", "clipped", detail)
        if len(self.motion) + 1 < lim.min_frames:
            return LivenessVerdict("undecided", "too_few_frames", detail)
        if sum(m >= lim.motion for m in self.motion) >= lim.moving:
            return LivenessVerdict("live", "motion", detail)
        return LivenessVerdict("undecided", "no_motion", detail)
