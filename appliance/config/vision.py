"""[vision]: the face check."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from appliance.config.base import Seconds, Section


class VisionConfig(Section, frozen=True, kw_only=True):
    # calibrated on tests/fixtures/faces/pairs.csv, see docs/BENCHMARKS.md "Face check"
    threshold: Annotated[float, Meta(gt=0, lt=1.5)] = 0.59
    # HOG finds faces of 80 px and up at this width: on a 1080p frame from a Pi camera (62-66
    # degrees across) that is a face within about 0.75 m, where a person typing on the panel
    # stands; nearer and larger faces are found in the same pass, farther ones in a second
    # pass at twice the width. 1920 / 480 is an integer factor (the fast block reduce).
    detect_width: Annotated[int, Meta(ge=80, le=4096)] = 480
    max_frames: Annotated[int, Meta(ge=1, le=100)] = 5
    window_s: Seconds = 3.0
    min_face_px: Annotated[int, Meta(ge=16)] = 60
    min_sharpness: Annotated[float, Meta(ge=0)] = 15.0
    # liveness: the face must move like a live face (not like a flat photo or print) and
    # show no screen cues (moire, banding, clipping); appliance/vision/liveness.py
    liveness: bool = True
    enhance_low_light: bool = True
    # with liveness on, frames are read until the face is judged live (a cooperative person:
    # a few frames), at most this many within window_s
    liveness_max_frames: Annotated[int, Meta(ge=3, le=300)] = 30
