"""Owns the OpenCV VideoCapture camera (USB webcams, V4L2 devices)."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from .base import CameraError


class OpenCVCamera:
    def __init__(self, device: int = 0, width: int = 1920, height: int = 1080) -> None:
        self._device, self._width, self._height = device, width, height
        self._cap: cv2.VideoCapture | None = None
        self._mutex = threading.Lock()

    def start(self) -> None:
        with self._mutex:
            if self._cap is not None:
                return
            cap = cv2.VideoCapture(self._device)
            if not cap.isOpened():
                cap.release()
                raise CameraError(f"cannot open camera device {self._device}")
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self._width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self._height)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            self._cap = cap

    def read(self) -> np.ndarray:
        self.start()
        with self._mutex:
            assert self._cap is not None
            ok, bgr = self._cap.read()
        if not ok:
            raise CameraError(f"camera device {self._device} returned no frame")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)  # in place: no second frame

    def stop(self) -> None:
        with self._mutex:
            if self._cap is not None:
                self._cap.release()
                self._cap = None

    def close(self) -> None:
        self.stop()
