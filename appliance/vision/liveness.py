"""Owns the door's liveness check: is the face in front of the camera a live person, or a
photo, a print, or a clip replayed on a screen?

Built only on what the face check already loads (no extra model, no extra licence): the HOG
detector's box and dlib's 5-point landmarks (trained on dlib's own CC0 data set). Two cues:

- **Non-rigid motion.** A photo or a print is one flat sheet: however it is held, frame N is
  frame 1 seen through a plane-to-plane mapping (a homography). A live face is not: eyes
  move and blink, the mouth and cheeks move, the head turns in 3D (the nose moves against the
  cheeks). Each frame's face is aligned on the 5 landmarks, then registered on the first
  frame by a homography (the ECC algorithm of Evangelidis and Psarakis, photometrically
  invariant, as OpenCV's findTransformECC implements it); what the homography cannot
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

Pixels are handled with numpy and Pillow only: the door process does not load OpenCV (its
import alone costs the door ~16 MB). The few image operations the check needs (grey, blur,
box and median filters, bilinear affine and perspective warps, ECC) are written here on
96 x 96 chips and 128 x 128 spectra, where numpy is fast enough.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .image import to_gray

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


# ---- pixel operations (numpy; OpenCV's conventions: pixel centres at integer coordinates,
# BORDER_REFLECT_101 for filters, zero outside the source for warps) ----------------------
def _gauss_kernel(sigma: float) -> np.ndarray:
    """A normalised Gaussian of radius 4 sigma (OpenCV's size for float images)."""
    r = max(1, int(np.ceil(4.0 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return (k / k.sum()).astype(np.float32)


def _separable(img: np.ndarray, k: np.ndarray) -> np.ndarray:
    """`img` convolved with the 1-D kernel `k` along both axes (reflect-101 borders)."""
    r = len(k) // 2
    h, w = img.shape
    p = np.pad(img.astype(np.float32, copy=False), ((r, r), (0, 0)), mode="reflect")
    rows = k[0] * p[0:h]
    for i in range(1, len(k)):
        rows += k[i] * p[i : i + h]
    p = np.pad(rows, ((0, 0), (r, r)), mode="reflect")
    out = k[0] * p[:, 0:w]
    for i in range(1, len(k)):
        out += k[i] * p[:, i : i + w]
    return out


def _gaussian(img: np.ndarray, sigma: float) -> np.ndarray:
    return _separable(img, _gauss_kernel(sigma))


_BINOMIAL5 = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16.0  # OpenCV's 5x5 Gaussian


def _box(img: np.ndarray, size: int) -> np.ndarray:
    return _separable(img, np.full(size, 1.0 / size, dtype=np.float32))


def _median(img: np.ndarray, size: int) -> np.ndarray:
    """size x size median filter (replicated borders)."""
    r = size // 2
    win = np.lib.stride_tricks.sliding_window_view(np.pad(img, r, mode="edge"), (size, size))
    flat = win.reshape(img.shape[0], img.shape[1], size * size)
    mid = size * size // 2
    return np.partition(flat, mid, axis=-1)[..., mid]


def _sample(src: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear samples of `src` (h, w) or (h, w, k) at (x, y), and the share of each sample
    that came from inside `src` (neighbours outside count as 0, as OpenCV's BORDER_CONSTANT
    does). Several images stacked on the last axis share one index computation."""
    h, w = src.shape[:2]
    x0 = np.floor(x).astype(np.intp)
    y0 = np.floor(y).astype(np.intp)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    out = np.zeros(x.shape + src.shape[2:], np.float32)
    inside = np.zeros(x.shape, np.float32)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            wgt = wx * wy * ok
            val = src[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
            out += wgt[..., None] * val if src.ndim == 3 else wgt * val
            inside += wgt
    return out, inside


_GRID: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    if n not in _GRID:
        yy, xx = np.mgrid[:n, :n].astype(np.float32)
        _GRID[n] = (xx, yy)
    return _GRID[n]


def _warp_affine(src: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """dst(x, y) = src(M^-1 (x, y)) for a 2x3 `m` mapping src to dst (cv2.warpAffine)."""
    a = np.vstack([m, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(a)
    xx, yy = _grid(size)
    sx = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
    sy = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
    return _sample(src, sx, sy)[0]


def _warp_inverse(src: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dst(x, y) = src(H (x, y)) for a 3x3 homography `h` mapping dst into src
    (cv2.warpPerspective with WARP_INVERSE_MAP), and where dst saw inside `src`."""
    n = src.shape[0]
    xx, yy = _grid(n)
    den = h[2, 0] * xx + h[2, 1] * yy + h[2, 2]
    den = np.where(np.abs(den) < 1e-9, 1e-9, den)
    sx = (h[0, 0] * xx + h[0, 1] * yy + h[0, 2]) / den
    sy = (h[1, 0] * xx + h[1, 1] * yy + h[1, 2]) / den
    return _sample(src, sx, sy)


def _ecc_homography(
    template: np.ndarray,
    image: np.ndarray,
    mask: np.ndarray,
    iterations: int = 50,
    eps: float = 1e-4,
) -> np.ndarray | None:
    """The homography H (image = template seen through H) maximising the enhanced
    correlation coefficient over `mask`: Evangelidis and Psarakis's forward-additive ECC, as
    cv2.findTransformECC(..., MOTION_HOMOGRAPHY, gaussFiltSize=5) runs it. None when the
    iteration turns away from a maximum (the images do not correlate)."""
    tmpl = _separable(template, _BINOMIAL5)
    img = _separable(image, _BINOMIAL5)
    pre = _separable(mask.astype(np.float32), _BINOMIAL5) * (0.5 / 0.95)
    pre = np.rint(pre).clip(0, 1).astype(np.float32)  # OpenCV's mask threshold after blur
    gx = np.zeros_like(img)
    gy = np.zeros_like(img)
    gx[:, 1:-1] = 0.5 * (img[:, 2:] - img[:, :-2])
    gy[1:-1, :] = 0.5 * (img[2:, :] - img[:-2, :])
    gx *= pre
    gy *= pre
    planes = np.stack([img, gx, gy, pre], axis=-1)  # warped together, one gather per step
    n = template.shape[0]
    xx, yy = _grid(n)
    warp = np.eye(3, dtype=np.float64)
    rho, last = -1.0, -eps
    for _ in range(iterations):
        if abs(rho - last) < eps:
            break
        stack = _warp_inverse(planes, warp)[0]
        warped, wgx, wgy, wmask = (stack[..., i] for i in range(4))
        sel = wmask > 0.5
        count = int(sel.sum())
        if count < 16:
            return None
        iv, tv = warped[sel], tmpl[sel]
        iv = iv - iv.mean()
        tv = tv - tv.mean()
        img_norm = float(np.sqrt(iv @ iv))
        tmp_norm = float(np.sqrt(tv @ tv))
        # Jacobian of the warped image in the 8 homography parameters, per masked pixel
        x, y = xx[sel], yy[sel]
        den = warp[2, 0] * x + warp[2, 1] * y + 1.0
        px = (warp[0, 0] * x + warp[0, 1] * y + warp[0, 2]) / den
        py = (warp[1, 0] * x + warp[1, 1] * y + warp[1, 2]) / den
        ggx, ggy = wgx[sel] / den, wgy[sel] / den
        jac = np.stack(
            [
                ggx * x,
                ggx * y,
                ggx,
                ggy * x,
                ggy * y,
                ggy,
                -(ggx * px + ggy * py) * x,
                -(ggx * px + ggy * py) * y,
            ],
            axis=1,
        ).astype(np.float64)
        hess = jac.T @ jac
        try:
            hinv = np.linalg.inv(hess)
        except np.linalg.LinAlgError:
            return None
        corr = float(tv @ iv)
        last, rho = rho, corr / (img_norm * tmp_norm + 1e-12)
        ip = jac.T @ iv
        tp = jac.T @ tv
        iph = hinv @ ip
        lam_n = img_norm * img_norm - float(ip @ iph)
        lam_d = corr - float(tp @ iph)
        if lam_d <= 0.0:
            return None
        err = (lam_n / lam_d) * tv - iv
        dp = hinv @ (jac.T @ err)
        warp[0, 0] += dp[0]
        warp[0, 1] += dp[1]
        warp[0, 2] += dp[2]
        warp[1, 0] += dp[3]
        warp[1, 1] += dp[4]
        warp[1, 2] += dp[5]
        warp[2, 0] += dp[6]
        warp[2, 1] += dp[7]
    return warp


def _chip_transform(points: np.ndarray) -> np.ndarray:
    """2x3 similarity mapping the face (5 points: two corners per eye, nose base) into a
    CHIP x CHIP square: eye centres level, 0.3 CHIP apart, nose below their midpoint."""
    right = points[0:2].mean(axis=0)
    left = points[2:4].mean(axis=0)
    mid = (right + left) / 2.0
    vec = right - left
    dist = float(np.hypot(*vec)) or 1.0
    angle = np.arctan2(vec[1], vec[0])  # rotate by this (counter-clockwise on screen)
    scale = 0.3 * CHIP / dist
    a, b = scale * np.cos(angle), scale * np.sin(angle)
    cx, cy = float(mid[0]), float(mid[1])
    m = np.array([[a, b, (1 - a) * cx - b * cy], [-b, a, b * cx + (1 - a) * cy]])
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
    crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
    if sigma:  # pre-blur against aliasing when the chip is much smaller than the face
        from PIL import Image, ImageFilter

        gray = np.asarray(
            Image.fromarray(crop).convert("L").filter(ImageFilter.GaussianBlur(sigma))
        )
    else:
        gray = to_gray(crop)  # uint8: a float copy of a large face's square would be 4x it
    m = _chip_transform(points - np.array([x0, y0], dtype=np.float64))
    return np.rint(_warp_affine(gray, m, CHIP))


_MASKS: dict[str, np.ndarray] = {}


def _ellipse_mask(parts: list[tuple[float, float, float, float]]) -> np.ndarray:
    m = np.zeros((CHIP, CHIP), np.uint8)
    xx, yy = _grid(CHIP)
    for cx, cy, ax, ay in parts:
        ccx, ccy = round(cx * CHIP), round(cy * CHIP)
        aax, aay = round(ax * CHIP) + 0.5, round(ay * CHIP) + 0.5  # the outline's pixels too
        m[((xx - ccx) / aax) ** 2 + ((yy - ccy) / aay) ** 2 <= 1.0] = 1
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
    warp = _ecc_homography(a, b, _mask())
    if warp is not None:  # else no convergence: compare as aligned by the landmarks
        b = _warp_inverse(b, warp)[0]
    diff = _gaussian(np.abs(a - b), 2.0)
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
    g = to_gray(region).astype(np.float32) if region.ndim == 3 else region.astype(np.float32)
    n = min(g.shape[0], g.shape[1], SPECTRUM_SIZE)
    if n < 32:
        return 0.0
    cy, cx = g.shape[0] // 2, g.shape[1] // 2
    g = g[cy - n // 2 : cy - n // 2 + n, cx - n // 2 : cx - n // 2 + n]
    g = g - _gaussian(g, 6.0)
    win = np.outer(np.hanning(n), np.hanning(n)).astype(np.float32)
    spec = np.abs(np.fft.fftshift(np.fft.fft2(g * win))).astype(np.float32)
    local = _median(_box(spec, 9), 5)  # mean first (fast), then a median of means
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
    """Collects one visit's frames (frame + face box + 5 landmarks) and judges them.

    The evidence must be the user's own face: the reference frame and every frame whose
    motion counts are confirmed by `person` (the face check's own encoder and threshold),
    asked only for those frames. Otherwise a visitor could show their own live face first
    and then the user's photo (or the other way round): the change of face would look like
    motion, and the photo would match.

    Frames seen before the user is known (while the code is typed) go to `watch`, which
    keeps a probe of the reference and of each frame whose motion reaches the limit; `bind`
    then asks about those probes, and drops all of it when the reference is not the user."""

    PENDING_MAX = 4  # moving frames kept for `bind` (it needs `moving` of them to be the user)

    def __init__(self, limits: LivenessLimits | None = None) -> None:
        self.limits = limits or LivenessLimits()
        self._reset()

    def _reset(self) -> None:
        self._ref: np.ndarray | None = None
        self.motion: list[float] = []  # the user's frames against the reference
        self.peaks: list[float] = []
        self.clipped: list[float] = []
        self.cut = 0  # frames whose face touched the frame's edge
        self.strangers = 0  # frames that would have counted but were not the user's face
        self.watched = 0  # frames judged before the user was known and kept by `bind`
        self._ref_probe: Any = None  # set while the reference awaits `bind`
        self._is_user: Callable[[Any], bool] | None = None  # from `bind`
        self._pending: list[tuple[float, Any]] = []  # (motion, probe) awaiting `bind`

    @property
    def frames(self) -> int:
        return len(self.peaks)

    def _chip(
        self, frame: np.ndarray, box: tuple[int, int, int, int], points: np.ndarray
    ) -> np.ndarray | None:
        """Screen cues of the frame; its aligned chip, or None when the face is cut."""
        region = _face_region(frame, box)
        self.peaks.append(peak_ratio(region))
        self.clipped.append(clipped_share(region))
        if not self.in_view(frame, box):
            # a face cut by the frame's edge (or a photo's): what lies beyond it is not the
            # face, and its motion proves nothing
            self.cut += 1
            return None
        return face_chip(frame, np.asarray(points, dtype=np.float64))

    def add(
        self,
        frame: np.ndarray,
        box: tuple[int, int, int, int],
        points: np.ndarray,
        person: Callable[[], bool] = lambda: True,
    ) -> None:
        """Judge one frame. `person()` says whether this frame's face is the user's; it is
        called (at most once) for the frame that would become the reference and for a frame
        whose motion reaches the limit."""
        chip = self._chip(frame, box, points)
        if chip is None:
            return
        if self._ref is None:
            if person():
                self._ref = chip
            else:
                self.strangers += 1
            return
        score = motion_score(self._ref, chip)
        if score >= self.limits.motion and not person():
            self.strangers += 1  # another face, not the user's moving
            return
        self.motion.append(score)

    def watch(
        self,
        frame: np.ndarray,
        box: tuple[int, int, int, int],
        points: np.ndarray,
        probe: Callable[[], Any],
    ) -> None:
        """Judge a frame seen before the user is known. `probe()` makes what `bind` will
        ask about (the face check's aligned face chip); it is called only for the reference
        and for frames whose motion reaches the limit."""
        chip = self._chip(frame, box, points)
        if chip is None:
            return
        if self._ref is None:
            self._ref, self._ref_probe = chip, probe()
            return
        score = motion_score(self._ref, chip)
        if score < self.limits.motion:
            self.motion.append(score)
        elif len(self._pending) < self.PENDING_MAX:
            self._pending.append((score, probe()))

    def bind(self, is_user: Callable[[Any], bool]) -> None:
        """The user is known: keep the watched evidence only if its reference is the user's
        face. The watched moving frames are asked about later, one at a time and only while
        `verdict` still needs them: a frame the check reads is often moving too, and its
        match is known already (each probe asked costs an encoder pass)."""
        ref_probe = self._ref_probe
        self._ref_probe = None
        if ref_probe is None:
            self._pending = []
            return
        if not is_user(ref_probe):
            self._reset()  # someone else's face: start afresh
            self.strangers = 1
            return
        self._is_user = is_user
        self.watched = self.frames

    def _confirm_pending(self) -> None:
        """Ask about watched moving frames until enough moving frames are the user's."""
        while self._pending and self._is_user is not None:
            if sum(m >= self.limits.motion for m in self.motion) >= self.limits.moving:
                return
            score, probe = self._pending.pop(0)
            if self._is_user(probe):
                self.motion.append(score)
            else:
                self.strangers += 1

    def in_view(self, frame: np.ndarray, box: tuple[int, int, int, int]) -> bool:
        top, right, bottom, left = box
        m = self.limits.margin * max(bottom - top, right - left)
        h, w = frame.shape[:2]
        return top - m >= 0 and left - m >= 0 and bottom + m <= h and right + m <= w

    def verdict(self) -> LivenessVerdict:
        lim = self.limits
        self._confirm_pending()
        detail = {
            "frames": self.frames,
            "cut": self.cut,
            "strangers": self.strangers,
            "watched": self.watched,
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
