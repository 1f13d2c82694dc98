"""load_image / decode_image / enhancement: clear errors naming the file, RGB uint8 output."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance.vision import FaceError, decode_image, load_image
from appliance.vision.image import darken, enhance_rgb, is_low_light, shrink, to_gray


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


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_large_photos_are_decoded_at_most_max_photo_side(tmp_path: Path, fmt: str) -> None:
    """A big upload is decoded small (JPEG at a reduced DCT scale), keeping its aspect and
    orientation; a photo within the limit keeps its size."""
    from appliance.vision.image import MAX_PHOTO_SIDE

    w, h = MAX_PHOTO_SIDE + 1000, (MAX_PHOTO_SIDE + 1000) * 3 // 4
    img = Image.new("RGB", (w, h), (200, 30, 30))
    img.paste((30, 30, 200), (0, 0, w // 4, h))  # blue on the left quarter
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise when shown
    buf = io.BytesIO()
    img.save(buf, fmt, **({"exif": exif} if fmt == "JPEG" else {}))
    arr = decode_image(buf.getvalue(), "big")
    if fmt == "JPEG":  # EXIF applied: the photo stands upright, the blue band now on top
        assert arr.shape == (MAX_PHOTO_SIDE, MAX_PHOTO_SIDE * 3 // 4, 3)
        assert arr[5, arr.shape[1] // 2, 2] > 150 and arr[-5, arr.shape[1] // 2, 0] > 150
    else:
        assert arr.shape == (MAX_PHOTO_SIDE * 3 // 4, MAX_PHOTO_SIDE, 3)
        assert arr[arr.shape[0] // 2, 5, 2] > 150 and arr[arr.shape[0] // 2, -5, 0] > 150
    small = Image.new("RGB", (640, 480), (10, 200, 10))
    buf = io.BytesIO()
    small.save(buf, fmt)
    assert decode_image(buf.getvalue()).shape == (480, 640, 3)


@pytest.mark.parametrize(("size", "k"), [((480, 270), 4), ((960, 540), 2), ((500, 281), None)])
def test_shrink_averages_the_pixels_each_output_pixel_covers(
    size: tuple[int, int], k: int | None
) -> None:
    gray = np.random.default_rng(5).integers(0, 256, (1080, 1920), dtype=np.uint8)
    small = shrink(gray, *size)
    assert small.shape == (size[1], size[0]) and small.dtype == np.uint8
    if k is not None:  # an integer factor: each pixel is the mean of its k x k block
        blocks = gray.reshape(size[1], k, size[0], k).astype(np.float64).mean(axis=(1, 3))
        assert np.abs(small - blocks).max() <= 1.0
    else:  # any other: the same as Pillow's area-average resize
        box = np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX))
        assert np.array_equal(small, box)


@pytest.mark.parametrize("shape", [(1080, 1920, 3), (1081, 1919, 3), (7, 5000, 3), (30, 40, 3)])
def test_grey_in_strips_is_the_whole_frames_luma(shape: tuple[int, int, int]) -> None:
    rgb = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    assert np.array_equal(to_gray(rgb), expected)
    window = rgb[2:-2, 3:-3]  # a view, as the check's window around a face is
    assert np.array_equal(to_gray(window), np.asarray(Image.fromarray(window.copy()).convert("L")))


def test_grey_of_a_1080p_frame_takes_little_more_memory_than_its_result() -> None:
    """Pillow holds RGB at 4 bytes per pixel: converted whole, a 1080p frame's grey copy
    raised the peak by ~10 MB; in strips by its own 2 MB and one strip."""
    import subprocess
    import sys

    script = (
        "import numpy as np\n"
        "from appliance.vision.image import to_gray\n"
        "def hwm():\n"
        "    s = open('/proc/self/status').read()\n"
        "    return int(s.split('VmHWM:')[1].split()[0]) / 1024\n"
        "rgb = np.empty((1080, 1920, 3), np.uint8); rgb[...] = 77\n"
        "to_gray(np.zeros((40, 40, 3), np.uint8))\n"
        "before = hwm(); g = to_gray(rgb); print(hwm() - before)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert float(out.stdout) < 5.0, out.stdout
