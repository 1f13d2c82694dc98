"""Owns the replay camera: image files, folders and videos played back in a loop."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import CameraError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_EXTS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v"}


def _expand(sources: Sequence[Path]) -> list[Path]:
    items: list[Path] = []
    for src in sources:
        src = Path(src)
        if src.is_dir():
            found = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS)
            if not found:
                raise CameraError(f"camera source folder {src} holds no images or videos")
            items += found
        elif src.is_file():
            if src.suffix.lower() not in IMAGE_EXTS | VIDEO_EXTS:
                raise CameraError(f"camera source {src} is not an image or video file")
            items.append(src)
        else:
            raise CameraError(f"camera source {src} does not exist")
    return items


def _read_only(frame: np.ndarray) -> np.ndarray:
    view = np.ascontiguousarray(frame).view()  # the caller's own array stays writable
    view.setflags(write=False)
    return view


def read_image_rgb(path: Path) -> np.ndarray:
    """Decode a still with Pillow (the door loads OpenCV only for a replayed video)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB") if img.mode != "RGB" else img
            return np.asarray(rgb)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise CameraError(f"{path} is not a readable image") from None


class ReplayCamera:
    """Plays images (each once per cycle) and videos (frame by frame) in order, looping.

    `set_sources()` swaps what the camera "sees" while it runs (the simulator's door panel).
    With no sources at all it sees an empty doorstep: a plain grey frame of `empty_size`.
    """

    def __init__(
        self,
        sources: Sequence[Path],
        *,
        loop: bool = True,
        empty_size: tuple[int, int] = (640, 480),
    ) -> None:
        # built on the first read that needs it: a camera with sources never holds it (at
        # 1920x1080 it is 6 MB of the door process)
        self._empty_size = empty_size
        self._empty: np.ndarray | None = None
        self._mutex = threading.Lock()
        self._loop = loop
        self._items: list[Path] = []
        self._cache: dict[Path, np.ndarray] = {}
        self._index = 0
        self._video: Any = None  # a cv2.VideoCapture while a video plays
        self._started = False
        self.set_sources(sources)

    def set_sources(self, sources: Sequence[Path]) -> None:
        items = _expand(sources) if sources else []
        with self._mutex:
            self._release_video()
            self._items = items
            self._index = 0
            self._cache = {p: f for p, f in self._cache.items() if p in items}

    def set_frame(self, frame: np.ndarray) -> None:
        """Show one in-memory frame (e.g. an uploaded photo) until sources change."""
        with self._mutex:
            self._release_video()
            key = Path(f"<frame:{id(frame)}>")
            self._items = [key]
            self._cache = {key: _read_only(frame)}
            self._index = 0

    @property
    def sources(self) -> list[Path]:
        return list(self._items)

    def start(self) -> None:
        self._started = True

    def stop(self) -> None:
        with self._mutex:
            self._release_video()
        self._started = False

    def close(self) -> None:
        self.stop()

    def read(self) -> np.ndarray:
        self._started = True
        with self._mutex:
            if not self._items:
                if self._empty is None:
                    w, h = self._empty_size
                    self._empty = _read_only(np.full((h, w, 3), 96, np.uint8))
                return self._empty
            for _ in range(len(self._items) + 1):
                if self._index >= len(self._items):
                    if not self._loop:
                        raise CameraError("replay camera reached the end of its sources")
                    self._index = 0
                item = self._items[self._index]
                if item.suffix.lower() in VIDEO_EXTS:
                    frame = self._next_video_frame(item)
                    if frame is not None:
                        return frame
                    self._index += 1
                    continue
                self._index += 1
                if item not in self._cache:
                    self._cache[item] = _read_only(read_image_rgb(item))
                # The same read-only array every time (as a camera buffer would be): a still
                # image costs one frame of memory however often it is read.
                return self._cache[item]
        raise CameraError("replay camera could not read any frame from its sources")

    def _next_video_frame(self, path: Path) -> np.ndarray | None:
        import cv2

        if self._video is None:
            self._video = cv2.VideoCapture(str(path))
            if not self._video.isOpened():
                self._release_video()
                raise CameraError(f"cannot open video {path}")
        ok, bgr = self._video.read()
        if not ok:
            self._release_video()
            return None
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)

    def _release_video(self) -> None:
        if self._video is not None:
            self._video.release()
            self._video = None
