"""load_image / decode_image / enhancement: clear errors naming the file, RGB uint8 output."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance.vision import FaceError, decode_image, load_image
from appliance.vision.image import darken, enhance_rgb, is_low_light, to_gray


def _save(path: Path, fmt: str, mode: str = "RGB") -> Path:
    Image.new(mode, (40, 30), 128).save(path, fmt)
    return path


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_load_image_gives_rgb_uint8(tmp_path: Path, fmt: str, suffix: str) -> None:
    arr = load_image(_save(tmp_path / f"x{suffix}", fmt))
    assert arr.dtype == np.uint8 and arr.shape == (30, 40, 3)


def test_load_image_converts_grey_and_rgba_png(tmp_path: Path) -> None:
    assert load_image(_save(tmp_path / "g.png", "PNG", "L")).shape == (30, 40, 3)
    assert load_image(_save(tmp_path / "a.png", "PNG", "RGBA")).shape == (30, 40, 3)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FaceError, match=r"nope\.jpg: no such file"):
        load_image(tmp_path / "nope.jpg")


def test_text_file_is_rejected_by_name(tmp_path: Path) -> None:
    p = tmp_path / "notes.jpg"
    p.write_text("hello")
    with pytest.raises(FaceError, match=r"notes\.jpg: not a readable JPEG or PNG"):
        load_image(p)


def test_other_formats_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(FaceError, match=r"x\.gif: GIF image; only JPEG and PNG"):
        load_image(_save(tmp_path / "x.gif", "GIF", "P"))


def test_truncated_jpeg_is_rejected(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200, 3), np.uint8)).save(
        buf, "JPEG"
    )
    p = tmp_path / "cut.jpg"
    p.write_bytes(buf.getvalue()[:600])
    with pytest.raises(FaceError, match=r"cut\.jpg"):
        load_image(p)


def test_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(FaceError, match="is a directory"):
        load_image(tmp_path)


def test_decode_image_names_the_upload() -> None:
    with pytest.raises(FaceError, match="me.png: not a readable"):
        decode_image(b"\x00\x01garbage", "me.png")


def test_darkened_frame_is_detected_as_low_light_and_enhanced(photo) -> None:
    img = photo("people/obama/obama1.jpg")
    dark = darken(img, exposure=0.12, noise_sigma=0.03)
    assert is_low_light(to_gray(dark))
    lifted = enhance_rgb(dark)
    assert to_gray(lifted).mean() > 2 * to_gray(dark).mean()
    assert to_gray(lifted).std() > to_gray(dark).std()
