"""Owns blink liveness: eye aspect ratio from 68-point landmarks and the blink test over frames."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# 68-point indices (iBUG 300-W): right eye 36-41, left eye 42-47 (from the subject's view).
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """Soukupova & Cech (2016): (|p2-p6| + |p3-p5|) / (2 |p1-p4|) for six eye points."""
    a = np.linalg.norm(eye[1] - eye[5])
    b = np.linalg.norm(eye[2] - eye[4])
    c = np.linalg.norm(eye[0] - eye[3])
    return float((a + b) / (2.0 * c)) if c > 0 else 0.0


def ear_from_landmarks(points: np.ndarray) -> float:
    """Mean EAR of both eyes from a (68, 2) landmark array."""
    if points.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {points.shape}")
    return 0.5 * (eye_aspect_ratio(points[RIGHT_EYE]) + eye_aspect_ratio(points[LEFT_EYE]))


def blink_detected(ears: Sequence[float], drop: float = 0.3) -> bool:
    """True when the EAR series goes open -> closed -> open.

    "Open" is the series' median. A frame is closed when its EAR is below open * (1 - drop)
    AND further below the median than 4 robust standard deviations (1.4826 x MAD) of the
    series, so landmark jitter on a moving, noisy print is not taken for a blink. The eye must
    be seen open (above open * (1 - drop / 2)) both before and after a closed frame: a still
    photo gives a flat series and never passes, nor does a photo slowly tilted away.
    """
    values = np.asarray([e for e in ears if e > 0], dtype=np.float64)
    if values.size < 3:
        return False
    open_level = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - open_level)))
    closed_below = min(open_level * (1.0 - drop), open_level - 4.0 * spread)
    open_above = open_level * (1.0 - drop / 2.0)
    seen_open = False
    seen_closed = False
    for v in values:
        if v >= open_above:
            if seen_closed:
                return True
            seen_open = True
        elif v < closed_below and seen_open:
            seen_closed = True
    return False
