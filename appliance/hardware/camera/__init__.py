"""Cameras: the port and its adapters (replay, OpenCV, picamera2), chosen by config."""

from __future__ import annotations

from appliance.config import CameraConfig

from .base import Camera, CameraError
from .replay import ReplayCamera


def open_camera(config: CameraConfig) -> Camera:
    if config.kind == "replay":
        return ReplayCamera(config.sources, empty_size=(config.width, config.height))
    if config.kind == "opencv":
        from .opencv import OpenCVCamera

        return OpenCVCamera(config.device, config.width, config.height)
    from .picamera import PiCamera

    return PiCamera(config.width, config.height)


__all__ = ["Camera", "CameraError", "ReplayCamera", "open_camera"]
