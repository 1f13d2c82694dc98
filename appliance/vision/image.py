"""Owns image input and pixel-level helpers: loading photos, low-light detection and enhancement."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .errors import FaceError

if TYPE_CHECKING:
    from PIL import Image

# PIL is imported where photos are decoded (enrollment, uploads, tools), not by the door's
# face check, which gets its frames from the camera: ~2 MB less in the door process.

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


def to_gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def is_low_light(gray: np.ndarray) -> bool:
    """Underexposed or flat luminance (the frame would benefit from enhancement)."""
    hist = cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel()
    p99 = int(np.searchsorted(np.cumsum(hist), 0.99 * hist.sum()))
    return p99 < DARK_P99 or float(gray.std()) < FLAT_STD


_clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))


def _gamma_lut(mean: float) -> np.ndarray:
    m = min(max(mean / 255.0, 1e-3), 0.999)
    gamma = float(np.clip(np.log(TARGET_MEAN) / np.log(m), 0.25, 1.0))
    return (np.power(np.arange(256) / 255.0, gamma) * 255.0 + 0.5).astype(np.uint8)


def enhance_gray(gray: np.ndarray) -> np.ndarray:
    """Gamma to lift the mean, then CLAHE for local contrast."""
    lut = _gamma_lut(float(gray.mean()))
    return _clahe.apply(cv2.LUT(gray, lut))


def enhance_rgb(rgb: np.ndarray) -> np.ndarray:
    """Gamma + CLAHE on the luminance channel only (colours keep their hue), light denoise first."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    lum = lab[:, :, 0]
    lum = cv2.GaussianBlur(lum, (3, 3), 0)
    lab[:, :, 0] = enhance_gray(lum)
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def darken(
    rgb: np.ndarray, *, exposure: float, noise_sigma: float, gamma: float = 2.2, seed: int = 0
) -> np.ndarray:
    """Simulate poor light: gamma, then exposure scale, then Gaussian noise (0-1 scale)."""
    x = (rgb.astype(np.float32) / 255.0) ** gamma * exposure
    rng = np.random.default_rng(seed)
    x = x + rng.normal(0.0, noise_sigma, size=x.shape).astype(np.float32)
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
