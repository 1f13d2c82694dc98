"""Fixtures for the face pipeline tests: the real photos, one shared engine, a frame camera."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from appliance.vision import FaceEngine, load_image


@pytest.fixture(scope="session")
def faces(faces_dir: Path) -> Path:
    """The real photos with their pairs.csv (the root fixture finds them)."""
    from tests.ci_gate import require

    require((faces_dir / "pairs.csv").is_file(), f"pairs.csv not found in {faces_dir}")
    return faces_dir


@pytest.fixture(scope="session")
def photo(faces: Path) -> Callable[[str], np.ndarray]:
    cache: dict[str, np.ndarray] = {}

    def get(rel: str) -> np.ndarray:
        if rel not in cache:
            cache[rel] = load_image(faces / rel)
        return cache[rel]

    return get


@pytest.fixture(scope="session")
def engine(face_engine: FaceEngine) -> FaceEngine:
    """The session's one engine with the default config (the root `face_engine`)."""
    return face_engine


class FrameCamera:
    """A camera that returns the given frames in order, repeating the last one."""

    def __init__(self, frames: Sequence[np.ndarray]) -> None:
        self.frames = list(frames)
        self.reads = 0

    def start(self) -> None:
        pass

    def read(self) -> np.ndarray:
        frame = self.frames[min(self.reads, len(self.frames) - 1)]
        self.reads += 1
        return frame

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def frame_camera() -> type[FrameCamera]:
    return FrameCamera
