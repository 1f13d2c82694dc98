"""Owns the face-check error hierarchy: every error names the problem and the file when known."""

from __future__ import annotations


class FaceError(ValueError):
    """A photo or frame cannot be used for a face check; the message says why."""


class NoFaceError(FaceError):
    """No face was found."""


class MultipleFacesError(FaceError):
    """More than one face was found where exactly one is required."""


class PoorQualityError(FaceError):
    """A face was found but it is too small or too blurred to be trusted."""
