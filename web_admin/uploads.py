"""Owns upload checks: JPEG/PNG only, pixel limits read from the header before decoding."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError
from werkzeug.datastructures import FileStorage

ALLOWED_EXTS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
MIN_SIDE = 64


class UploadError(ValueError):
    """An upload refused; the message names the file and the reason."""


@dataclass(frozen=True)
class Limits:
    max_pixels: int
    max_side: int


def _label(name: str | None) -> str:
    name = (name or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if c.isprintable())[:120] or "upload"


# PNG has no reduced-scale decoding (JPEG has: draft), so a PNG is decoded whole before it is
# scaled down; this caps what one PNG may cost (16 MP: at most 64 MB while it is decoded).
PNG_MAX_PIXELS = 16_000_000
# uploads are decoded at most this large on their long side: plenty for a face (the encoder
# sees a 150 px chip; stored photos are 1024 px), and a quarter of the door decoder's pixels
UPLOAD_MAX_SIDE = 2000


def check_image(data: bytes, name: str | None, limits: Limits) -> np.ndarray:
    """Decode an uploaded photo to RGB uint8, refusing anything but a sane JPEG or PNG.

    The declared size is read from the header first, so a tiny file declaring 30000x30000
    pixels is refused before any pixel memory is allocated. The pixels are then decoded once,
    by the door's own bounded decoder (appliance.vision.image.decode_image: JPEGs at a reduced
    DCT scale, at most UPLOAD_MAX_SIDE on the long side).
    """
    from appliance.vision.errors import FaceError
    from appliance.vision.image import decode_image

    label = _label(name)
    ext = "." + label.rsplit(".", 1)[-1].lower() if "." in label else ""
    if ext not in ALLOWED_EXTS:
        raise UploadError(f"{label}: only .jpg, .jpeg and .png photos are accepted")
    if not data:
        raise UploadError(f"{label}: the file is empty")
    try:
        img = Image.open(io.BytesIO(data))  # lazy: reads the header only
    except Image.DecompressionBombError:
        raise UploadError(
            f"{label}: the image declares far too many pixels; it is too large"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise UploadError(f"{label}: not a JPEG or PNG image (cannot read its header)") from None
    with img:
        fmt = img.format
        w, h = img.size
    if fmt not in ("JPEG", "PNG"):
        raise UploadError(f"{label}: a {fmt or 'unknown'} file; only JPEG and PNG")
    if w > limits.max_side or h > limits.max_side or w * h > limits.max_pixels:
        raise UploadError(
            f"{label}: {w}x{h} pixels is too large (at most {limits.max_side} per side and "
            f"{limits.max_pixels // 1_000_000} megapixels)"
        )
    if fmt == "PNG" and w * h > PNG_MAX_PIXELS:
        raise UploadError(
            f"{label}: a {w}x{h} PNG is too large (at most {PNG_MAX_PIXELS // 1_000_000} "
            "megapixels for PNG; send it as a JPEG or scale it down)"
        )
    if w < MIN_SIDE or h < MIN_SIDE:
        raise UploadError(f"{label}: {w}x{h} pixels is too small for a face photo")
    try:
        return decode_image(data, label, max_side=UPLOAD_MAX_SIDE)
    except FaceError as exc:
        raise UploadError(f"{exc} (the image is damaged or truncated)") from None


def iter_uploads(
    files: list[FileStorage], limits: Limits, max_files: int
) -> Iterator[tuple[str, np.ndarray]]:
    """Each non-empty file field as (label, RGB image), decoded one at a time when asked for:
    the caller keeps what it needs (a template, a small JPEG) before the next is decoded."""
    files = [f for f in files if f and f.filename]
    if len(files) > max_files:
        raise UploadError(f"{len(files)} photos given; at most {max_files} at a time")
    for f in files:
        data = f.read()
        f.close()
        yield _label(f.filename), check_image(data, f.filename, limits)
        del data


def read_uploads(
    files: list[FileStorage], limits: Limits, max_files: int
) -> list[tuple[str, np.ndarray]]:
    """Every non-empty file field as (label, RGB image); UploadError names the first bad one."""
    return list(iter_uploads(files, limits, max_files))


def encode_jpeg(rgb: np.ndarray, max_side: int = 1024, quality: int = 88) -> bytes:
    """Re-encode a photo as a fresh JPEG (no metadata kept), scaled down to max_side."""
    img = Image.fromarray(rgb, "RGB")
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
