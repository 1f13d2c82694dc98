"""Owns the Raspberry Pi camera adapter; picamera2 is imported here and nowhere else."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .base import CameraError

BUFFERS = 3  # camera buffers; fewer only means the camera may drop a frame while we are busy


class PiCamera:
    """picamera2: configure -> start -> capture_array(). Frames come out RGB."""

    def __init__(self, width: int = 1920, height: int = 1080) -> None:
        self._size = (width, height)
        self._cam: Any = None
        self._mutex = threading.Lock()

    def start(self) -> None:
        with self._mutex:
            if self._cam is not None:
                return
            try:
                from picamera2 import Picamera2  # only importable on a Pi with libcamera
            except ImportError as exc:
                raise CameraError(
                    "camera.kind = 'picamera2' needs the python3-picamera2 package (Pi only)"
                ) from exc
            try:
                cam = Picamera2()
                # picamera2 names formats by DRM fourcc: "BGR888" is R, G, B in memory, i.e. the
                # RGB frames Doorward wants, at 3 bytes a pixel (XBGR8888 would be 4). Three
                # buffers instead of the video default of six: the DMA buffers are mapped into
                # this process, and at 1080p each one is 6 MB.
                cam.configure(
                    cam.create_video_configuration(
                        main={"size": self._size, "format": "BGR888"}, buffer_count=BUFFERS
                    )
                )
                cam.start()
            except Exception as exc:
                raise CameraError(f"Pi camera failed to start: {exc}") from exc
            self._cam = cam

    def read(self) -> np.ndarray:
        self.start()
        try:
            frame = self._cam.capture_array("main")  # a copy: the buffer goes back at once
        except Exception as exc:
            raise CameraError(f"Pi camera capture failed: {exc}") from exc
        return np.ascontiguousarray(frame)

    def stop(self) -> None:
        with self._mutex:
            if self._cam is not None:
                try:
                    self._cam.stop()
                    self._cam.close()
                finally:
                    self._cam = None

    def close(self) -> None:
        self.stop()
