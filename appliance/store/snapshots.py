"""Owns snapshot files: JPEGs of what the camera saw, stored under <data_dir>/snapshots."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import simplejpeg

from .models import new_uuid, utcnow


class SnapshotStore:
    def __init__(self, data_dir: Path, quality: int = 85) -> None:
        self.data_dir = Path(data_dir)
        self.quality = quality

    def save(self, frame_rgb: np.ndarray, name: str | None = None) -> str:
        """Write `frame_rgb` as JPEG (fsynced); returns its path relative to the data dir."""
        now = utcnow()
        rel = Path("snapshots") / now.strftime("%Y/%m/%d") / f"{name or new_uuid()}.jpg"
        path = self.data_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # simplejpeg (libjpeg-turbo, as picamera2 uses) encodes the RGB frame in place: no
        # BGR copy of a full frame at the moment the door is busiest.
        try:
            data = simplejpeg.encode_jpeg(
                np.ascontiguousarray(frame_rgb), quality=self.quality, colorspace="RGB"
            )
        except (ValueError, TypeError) as exc:
            raise ValueError(f"frame could not be encoded as JPEG ({exc})") from None
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return rel.as_posix()

    def path(self, rel: str) -> Path:
        p = (self.data_dir / rel).resolve()
        if self.data_dir.resolve() not in p.parents:
            raise ValueError(f"snapshot path {rel!r} leaves the data dir")
        return p

    def read(self, rel: str | None) -> bytes | None:
        if not rel:
            return None
        try:
            return self.path(rel).read_bytes()
        except (OSError, ValueError):
            return None
