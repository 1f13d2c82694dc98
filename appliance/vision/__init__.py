"""Owns the face pipeline's public API: enrollment, door verification, identification, images."""

from __future__ import annotations

from .engine import (
    Enrollment,
    FaceDecision,
    FaceEngine,
    FaceFound,
    Sighting,
    face_distances,
    nearest,
)
from .errors import FaceError, MultipleFacesError, NoFaceError, PoorQualityError
from .image import decode_image, load_image

__all__ = [
    "Enrollment",
    "FaceDecision",
    "FaceEngine",
    "FaceError",
    "FaceFound",
    "MultipleFacesError",
    "NoFaceError",
    "PoorQualityError",
    "Sighting",
    "decode_image",
    "face_distances",
    "load_image",
    "nearest",
]
