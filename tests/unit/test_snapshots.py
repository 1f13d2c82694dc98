"""Snapshot files: JPEG of the RGB frame, colours kept, written atomically, bad frames named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance.store.snapshots import SnapshotStore


def test_snapshot_keeps_the_colours_of_the_rgb_frame(tmp_path: Path) -> None:
    frame = np.zeros((64, 96, 3), np.uint8)
    frame[:, :32] = (220, 20, 20)  # red
    frame[:, 32:64] = (20, 220, 20)  # green
    frame[:, 64:] = (20, 20, 220)  # blue
    frame.setflags(write=False)  # camera frames may be read-only
    store = SnapshotStore(tmp_path)
    rel = store.save(frame)
    path = store.path(rel)
    assert path.suffix == ".jpg" and not list(path.parent.glob("*.tmp"))
    back = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    assert back.shape == frame.shape
    for x, channel in ((16, 0), (48, 1), (80, 2)):
        px = back[32, x]
        assert px.argmax() == channel, f"column {x}: {px.tolist()}"
    assert store.read(rel) == path.read_bytes()


def test_snapshot_refuses_a_frame_that_is_not_an_image(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    with pytest.raises(ValueError, match="frame could not be encoded"):
        store.save(np.zeros((10, 10), np.float32))
    assert not list(tmp_path.rglob("*.jpg"))
