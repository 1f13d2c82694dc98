"""Owns the Raspberry Pi camera adapter; picamera2 is imported here and nowhere else.

picamera2 is used as its authors designed it: one Picamera2 object, configured once, then
start()/stop() as often as the door wakes and sleeps, and close() at exit. The object is built
again only after a failure (the camera was unplugged or libcamera lost it).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np

from .base import CameraError

BUFFERS = 3  # camera buffers; fewer only means the camera may drop a frame while we are busy


def _picamera2_class() -> Any:
    try:
        from picamera2 import Picamera2  # only importable on a Pi with libcamera
    except ImportError as exc:
        raise CameraError(
            "camera.kind = 'picamera2' needs the python3-picamera2 package (Pi only)"
        ) from exc
    return Picamera2


class PiCamera:
    """picamera2: configure once -> start/stop per wake -> capture_array(). Frames are RGB."""

    def __init__(self, width: int = 1920, height: int = 1080) -> None:
        self._size = (width, height)
        self._cam: Any = None  # the configured Picamera2, kept across start/stop
        self._running = False
        self._mutex = threading.Lock()

    def _open(self) -> Any:
        """The configured camera object, built and configured on first use only."""
        if self._cam is None:
            cam = _picamera2_class()()
            try:
                # picamera2 names formats by DRM fourcc: "BGR888" is R, G, B in memory, i.e.
                # the RGB frames Doorward wants, at 3 bytes a pixel (XBGR8888 would be 4).
                # Three buffers instead of the video default of six: the DMA buffers are
                # mapped into this process, and at 1080p each one is 6 MB.
                cam.configure(
                    cam.create_video_configuration(
                        main={"size": self._size, "format": "BGR888"}, buffer_count=BUFFERS
                    )
                )
            except Exception:
                cam.close()
                raise
            self._cam = cam
        return self._cam

    def _discard(self) -> None:
        """Close and forget the camera object after a failure; the next start rebuilds it."""
        cam, self._cam, self._running = self._cam, None, False
        if cam is not None:
            with contextlib.suppress(Exception):  # already failing: the first error is reported
                cam.close()

    def start(self) -> None:
        with self._mutex:
            if self._running:
                return
            try:
                self._open().start()
            except CameraError:
                raise
            except Exception as exc:
                self._discard()
                raise CameraError(f"Pi camera failed to start: {exc}") from exc
            self._running = True

    def read(self) -> np.ndarray:
        self.start()
        try:
            frame = self._cam.capture_array("main")  # a copy: the buffer goes back at once
        except Exception as exc:
            with self._mutex:
                self._discard()
            raise CameraError(f"Pi camera capture failed: {exc}") from exc
        return np.ascontiguousarray(frame)

    def stop(self) -> None:
        """Stop streaming (the door sleeps); the configured camera is kept for the next wake."""
        with self._mutex:
            if not self._running:
                return
            try:
                self._cam.stop()
            except Exception as exc:
                self._discard()
                raise CameraError(f"Pi camera failed to stop: {exc}") from exc
            self._running = False

    def close(self) -> None:
        """Release the camera (exit). Idempotent."""
        with self._mutex:
            if self._cam is None:
                return
            try:
                if self._running:
                    self._cam.stop()
                self._cam.close()
            finally:
                self._cam, self._running = None, False
