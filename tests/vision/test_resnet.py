"""The door's encoder (numpy) against dlib's own run of the same model file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from appliance.vision.image import load_image
from appliance.vision.models import ENCODER, ModelError, Models, model_path
from appliance.vision.resnet import ResNetEncoder, ResNetFileError, _Reader


@pytest.fixture(scope="module")
def chips(face_engine, faces_dir: Path) -> list[tuple[str, np.ndarray]]:
    """The aligned chip of every photo of tests/fixtures/faces/people."""
    out = []
    for path in sorted((faces_dir / "people").glob("*/*")):
        image = load_image(path)
        faces = face_engine.detect(image)
        if faces:
            out.append((path.name, face_engine.probe(image, faces[0])))
    assert len(out) >= 15
    return out


def test_descriptors_are_dlibs_to_float_rounding(chips) -> None:
    import dlib

    ours = ResNetEncoder(model_path(ENCODER))
    theirs = dlib.face_recognition_model_v1(str(model_path(ENCODER)))
    worst = 0.0
    for name, chip in chips:
        a = np.asarray(theirs.compute_face_descriptor(chip))
        b = ours.descriptor(chip)
        assert b.shape == (128,) and b.dtype == np.float32
        worst = max(worst, float(np.abs(a - b).max()))
        assert np.linalg.norm(a - b) < 1e-4, name  # the threshold is 0.59
    # and the descriptors are of faces, not constants: different people lie far apart
    first, other = ours.descriptor(chips[0][1]), ours.descriptor(chips[-1][1])
    assert np.linalg.norm(first - other) > 0.3
    print(f"resnet_vs_dlib worst_abs_diff={worst:.2e} chips={len(chips)}")


def test_a_chip_of_the_wrong_shape_is_refused_by_name() -> None:
    enc = ResNetEncoder(model_path(ENCODER))
    with pytest.raises(ValueError, match="150x150x3 uint8"):
        enc.descriptor(np.zeros((150, 150), np.uint8))
    with pytest.raises(ValueError, match="150x150x3 uint8"):
        enc.descriptor(np.zeros((150, 150, 3), np.float32))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d[: len(d) // 2], "ends early"),
        (lambda d: b"\x01\x01\x01\x05hello" + d[16:], "not a dlib metric-learning network"),
        (lambda d: b"", "ends early"),
    ],
    ids=["truncated", "other-file", "empty"],
)
def test_a_damaged_model_file_is_refused_with_the_reason(
    tmp_path: Path, damage, message: str
) -> None:
    bad = tmp_path / "model.dat"
    bad.write_bytes(damage(model_path(ENCODER).read_bytes()))
    with pytest.raises(ResNetFileError, match=message):
        ResNetEncoder(bad)


def test_a_flipped_layer_size_is_refused(tmp_path: Path) -> None:
    """The file is read against the network's definition: a convolution stored with another
    stride (one byte changed) is not run as if it were the expected one."""
    data = bytearray(model_path(ENCODER).read_bytes())
    at = data.index(b"\x01\x05con_4") + 7  # the first convolution's details
    # params tensor: version, 4 sizes; then filters, nr, nc, stride_y ...
    f = io.BytesIO(bytes(data))
    f.seek(at)
    r = _Reader(f)
    r.tensor()
    for _ in range(3):
        r.integer()
    assert data[r.pos : r.pos + 2] == b"\x01\x02"  # stride_y = 2
    data[r.pos + 1] = 3
    bad = tmp_path / "model.dat"
    bad.write_bytes(bytes(data))
    with pytest.raises(ResNetFileError, match="convolution"):
        ResNetEncoder(bad)


def test_models_name_the_file_when_it_is_damaged(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / ENCODER).write_bytes(b"\x01\x01")
    monkeypatch.setattr("appliance.vision.models.models_dir", lambda: tmp_path)
    with pytest.raises(ModelError, match=ENCODER):
        _ = Models().encoder
