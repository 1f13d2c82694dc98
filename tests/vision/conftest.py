"""Fixtures for the face pipeline tests: the real photos, one shared engine, a frame camera."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from appliance.config import VisionConfig
from appliance.vision import FaceEngine, load_image

REPO = Path(__file__).resolve().parents[2]


def faces_dir() -> Path:
    return Path(os.environ.get("FACES_DIR") or REPO / "tests" / "fixtures" / "faces")


@pytest.fixture(scope="session")
def faces() -> Path:
    d = faces_dir()
    if not (d / "pairs.csv").is_file():
        msg = f"face photos not found at {d} (set FACES_DIR)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture(scope="session")
def photo(faces: Path) -> Callable[[str], np.ndarray]:
    cache: dict[str, np.ndarray] = {}

    def get(rel: str) -> np.ndarray:
        if rel not in cache:
            cache[rel] = load_image(faces / rel)
        return cache[rel]

    return get


@pytest.fixture(scope="session")
def engine() -> FaceEngine:
    return FaceEngine(VisionConfig())


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


class StepClock:
    """A fake monotonic clock that advances `step` seconds per call."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def frame_camera() -> type[FrameCamera]:
    return FrameCamera


@pytest.fixture
def step_clock() -> type[StepClock]:
    return StepClock
