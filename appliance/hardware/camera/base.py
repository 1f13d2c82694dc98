"""Owns the camera port: what every camera adapter provides to the rest of Doorward."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


class CameraError(RuntimeError):
    """The camera could not be opened or stopped delivering frames."""


@runtime_checkable
class Camera(Protocol):
    """A source of frames: RGB uint8 arrays of shape (height, width, 3).

    start() may be called again while started (no-op); read() on a stopped camera starts it.
    close() is idempotent. A frame may be read-only (the replay camera hands out the same
    array for a still image): consumers copy before they draw on it.
    """

    def start(self) -> None: ...

    def read(self) -> np.ndarray: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...
