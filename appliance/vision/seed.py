"""Owns the prototype's face check ("seed pipeline"), kept only as the benchmark baseline.

It loads face_recognition.api (every dlib model, ~200 MB) on first use, runs the HOG detector
with one upsampling on the full frame, and re-encodes the enrolled photo on every check with
face_recognition's defaults (5-point landmarks, num_jitters=1: one encoder pass per face).
Its 3 s capture delay is left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SEED_TOLERANCE = 0.6  # face_recognition.compare_faces' default, which the prototype used


def _api() -> Any:
    import face_recognition.api as api

    return api


def seed_encode(image: np.ndarray) -> np.ndarray | None:
    """Prototype encoding of a photo: first face found by HOG (upsample 1), or None."""
    api = _api()
    locations = api.face_locations(image, number_of_times_to_upsample=1, model="hog")
    if not locations:
        return None
    return np.asarray(api.face_encodings(image, locations)[0])


def seed_check(enrolled_photo: np.ndarray, frame: np.ndarray) -> tuple[bool, float | None]:
    """One prototype login: re-encode the enrolled photo, then the frame; compare at 0.6."""
    known = seed_encode(enrolled_photo)
    probe = seed_encode(frame)
    if known is None or probe is None:
        return False, None
    d = float(np.linalg.norm(known - probe))
    return d <= SEED_TOLERANCE, d
