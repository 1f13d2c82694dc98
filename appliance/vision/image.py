"""Owns image input and pixel-level helpers: loading photos, low-light detection and enhancement.

Pixels are handled with Pillow and numpy, not OpenCV: the door process does not load cv2
(~16 MB of its memory) unless a USB camera or a replayed video needs it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import FaceError

if TYPE_CHECKING:
    from PIL import Image

# PIL is imported on first use (decoding, grey conversion, area resizing), not at import.

ACCEPTED_FORMATS = ("JPEG", "PNG")
# Photos are decoded at most this large on their long side. A face photo gains nothing above
# it (the encoder sees a 150 px chip), and a 40 MP upload decoded whole took ~740 MB of memory:
# JPEGs are decoded at a reduced DCT scale (draft), other formats are resized after decoding.
MAX_PHOTO_SIDE = 3000

# A frame is underexposed when even its brightest 1 % stays below half scale, or flat when its
# luminance barely varies (0-255 scale). Normal photos have highlights near 255.
DARK_P99 = 128.0
FLAT_STD = 12.0
TARGET_MEAN = 0.45  # gamma brings the mean luminance of a dark frame to this (0-1)
BLUR_RADIUS = 0.8  # px of the detection copy, dark frames only


def _draft(img: Image.Image, max_side: int = MAX_PHOTO_SIDE) -> None:
    """Ask the JPEG decoder for the smallest DCT scale that still covers max_side."""
    w, h = img.size
    scale = max_side / max(w, h, 1)
    if img.format == "JPEG" and scale < 1:
        img.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))


def _to_rgb_array(img: Image.Image, name: str, max_side: int = MAX_PHOTO_SIDE) -> np.ndarray:
    from PIL import Image, ImageOps

    if img.format not in ACCEPTED_FORMATS:
        raise FaceError(f"{name}: {img.format or 'unknown'} image; only JPEG and PNG are accepted")
    try:
        if img.mode in ("P", "1", "I", "I;16", "F"):  # modes resize cannot filter well
            img = img.convert("RGB")
        if max(img.size) > max_side:  # scale down first: every later copy is small
            img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        img = ImageOps.exif_transpose(img)
        if img.mode != "RGB":
            img = img.convert("RGB")
        arr = np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:
        raise FaceError(f"{name}: image is damaged or truncated ({exc})") from None
    if arr.ndim != 3 or arr.shape[0] < 16 or arr.shape[1] < 16:
        raise FaceError(f"{name}: image is too small ({arr.shape[1]}x{arr.shape[0]})")
    return np.ascontiguousarray(arr)


def _open_rgb(
    source: str | os.PathLike[str] | io.BytesIO, name: str, max_side: int = MAX_PHOTO_SIDE
) -> np.ndarray:
    """Decode a JPEG or PNG (at most max_side); other OSErrors are the caller's."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as img:
            _draft(img, max_side)
            img.load()
            return _to_rgb_array(img, name, max_side)
    except UnidentifiedImageError:
        raise FaceError(f"{name}: not a readable JPEG or PNG image") from None
    except Image.DecompressionBombError:
        raise FaceError(f"{name}: image is too large") from None


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a JPEG or PNG file as an RGB uint8 array (EXIF orientation applied).

    Raises FaceError naming the file when it is missing, unreadable or not a JPEG/PNG image.
    """
    p = Path(path)
    try:
        return _open_rgb(p, str(p))
    except FileNotFoundError:
        raise FaceError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise FaceError(f"{p}: is a directory, not an image") from None
    except OSError as exc:
        raise FaceError(f"{p}: cannot read image ({exc.strerror or exc})") from None


def decode_image(data: bytes, name: str = "upload", max_side: int = MAX_PHOTO_SIDE) -> np.ndarray:
    """Like load_image, for bytes already in memory (e.g. an uploaded file); at most
    min(max_side, MAX_PHOTO_SIDE) pixels on the long side."""
    try:
        return _open_rgb(io.BytesIO(data), name, min(max_side, MAX_PHOTO_SIDE))
    except OSError as exc:
        raise FaceError(f"{name}: cannot read image ({exc})") from None


def check_frame(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Validate an RGB uint8 (h, w, 3) array; returns it C-contiguous (dlib needs that)."""
    if not isinstance(image, np.ndarray):
        raise FaceError(f"{what}: expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise FaceError(
            f"{what}: expected an RGB uint8 array (h, w, 3), got {image.dtype} {image.shape}"
        )
    return np.ascontiguousarray(image)


def _pil(gray_or_rgb: np.ndarray) -> Image.Image:
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(gray_or_rgb))


# Pillow holds an RGB image at 4 bytes per pixel: a whole 1080p frame converted at once
# took a transient 8 MB besides its 2 MB grey result (measured: +9.8 MB of peak RSS against
# +3.2 MB in strips), on every whole-frame detection of the check and of the watcher.
GRAY_STRIP_BYTES = 1 << 20


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Luma (ITU-R 601-2, as the detector was trained on) of an RGB uint8 frame; a large
    frame is converted in strips of about GRAY_STRIP_BYTES of Pillow's RGB."""
    h, w = rgb.shape[:2]
    rows = max(1, GRAY_STRIP_BYTES // (4 * max(w, 1)))
    if h <= rows:
        return np.asarray(_pil(rgb).convert("L"))
    out = np.empty((h, w), np.uint8)
    for y in range(0, h, rows):
        out[y : y + rows] = np.asarray(_pil(rgb[y : y + rows]).convert("L"))
    return out


def shrink(gray: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-average `gray` down to width x height (each output pixel is the mean of the input
    pixels it covers, so sensor noise averages out). An integer factor in both directions (a
    1920x1080 frame to 480 or 960 px) takes Pillow's block reduce: the same means (to the
    rounding of the last bit) at a fifth of the general resize's time."""
    from PIL import Image

    h, w = gray.shape[:2]
    k = w // width
    if k > 1 and w == k * width and h == k * height:
        return np.asarray(_pil(gray).reduce(k))
    return np.asarray(_pil(gray).resize((width, height), Image.Resampling.BOX))


def _percentiles(gray: np.ndarray, *fractions: float) -> list[int]:
    cum = np.cumsum(np.bincount(gray.ravel(), minlength=256))
    return [int(np.searchsorted(cum, f * cum[-1])) for f in fractions]


def is_low_light(gray: np.ndarray) -> bool:
    """Underexposed or flat luminance (the frame would benefit from enhancement)."""
    (p99,) = _percentiles(gray, 0.99)
    return p99 < DARK_P99 or float(gray.std()) < FLAT_STD


def _lift_lut(gray: np.ndarray) -> np.ndarray:
    """A tone curve for a dark frame: a linear gain that brings the 99.5th percentile to full
    scale (black stays black, so the noise floor is not stretched), then the gamma that
    brings the mean to TARGET_MEAN. No local contrast step: CLAHE amplified the noise of
    dark frames into texture the detector took for edges. (Tuned on tests/fixtures/faces
    and tests/fixtures/faces_eval/tune; a black-point stretch as well gave one false accept
    there at 35 % exposure, see docs/BENCHMARKS.md.)"""
    lo = 0
    (hi,) = _percentiles(gray, 0.995)
    hi = max(hi, lo + 8)
    x = np.clip((np.arange(256, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0)
    stretched = gray.astype(np.float64)
    mean = float(np.clip((stretched.mean() - lo) / (hi - lo), 1e-3, 0.999))
    gamma = float(np.clip(np.log(TARGET_MEAN) / np.log(mean), 0.3, 1.0))
    return (np.power(x, gamma) * 255.0 + 0.5).astype(np.uint8)


def enhance_gray(gray: np.ndarray) -> np.ndarray:
    """Dark-frame tone curve (see _lift_lut) on a detection copy, after a light blur that
    takes the remaining sensor noise below the detector's edge scale."""
    from PIL import ImageFilter

    smooth = np.asarray(_pil(gray).filter(ImageFilter.GaussianBlur(radius=BLUR_RADIUS)))
    return _lift_lut(smooth)[smooth]


def tone_gray(gray: np.ndarray) -> np.ndarray:
    """The dark-frame tone curve alone (no blur), from the grey image's own levels."""
    return _lift_lut(gray)[gray]


def enhance_rgb(rgb: np.ndarray) -> np.ndarray:
    """The same tone curve on all three channels (from the crop's own luma): hues stay, the
    face gets the brightness the encoder was trained on."""
    return _lift_lut(to_gray(rgb))[rgb]


def reduce_rgb(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Area-average an RGB crop by an integer factor (noise averages over factor^2 pixels)."""
    if factor <= 1:
        return rgb
    return np.asarray(_pil(rgb).reduce(factor))


def darken(
    rgb: np.ndarray, *, exposure: float, noise_sigma: float, gamma: float = 2.2, seed: int = 0
) -> np.ndarray:
    """Simulate poor light: gamma, then exposure scale, then Gaussian noise (0-1 scale)."""
    x = (rgb.astype(np.float32) / 255.0) ** gamma * exposure
    rng = np.random.default_rng(seed)
    x = x + rng.normal(0.0, noise_sigma, size=x.shape).astype(np.float32)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
