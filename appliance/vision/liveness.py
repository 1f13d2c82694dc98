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


EyePair = tuple[float, float]  # (right eye EAR, left eye EAR)
MIN_FRAMES = 5  # frames with a face before a blink can be judged (the open level needs them)


def ears_from_landmarks(points: np.ndarray) -> EyePair:
    """EAR of each eye, (right, left), from a (68, 2) landmark array."""
    if points.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {points.shape}")
    return eye_aspect_ratio(points[RIGHT_EYE]), eye_aspect_ratio(points[LEFT_EYE])


def _states(values: np.ndarray, drop: float) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: (open, closed) for one eye's EAR series, judged against its own median.

    Closed = below open * (1 - drop) AND further below the median than 4 robust standard
    deviations (1.4826 x MAD), so landmark jitter is not taken for a closed eye."""
    open_level = float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(values - open_level)))
    closed_below = min(open_level * (1.0 - drop), open_level - 4.0 * spread)
    open_above = open_level * (1.0 - drop / 2.0)
    return values >= open_above, values < closed_below


def blink_detected(ears: Sequence[float] | Sequence[EyePair], drop: float = 0.3) -> bool:
    """True when the eyes go open -> closed -> open across the series.

    Items are either one EAR per frame or (right, left) pairs. With pairs a frame counts as
    closed only when BOTH eyes are closed in it, and as open when both are open: a real blink
    shuts both eyes at once, while landmark errors on a print (a partial or tilted face) move
    one eye at a time. At least MIN_FRAMES frames are needed. The eye must be seen open before
    and after a closed frame: a still photo gives a flat series and never passes, nor does a
    photo slowly tilted away.
    """
    rows = [e if isinstance(e, tuple) else (e,) for e in ears]
    rows = [r for r in rows if all(v > 0 for v in r)]
    if len(rows) < MIN_FRAMES:
        return False
    arr = np.asarray(rows, dtype=np.float64)  # (frames, eyes)
    per_eye = [_states(arr[:, i], drop) for i in range(arr.shape[1])]
    is_open = np.logical_and.reduce([o for o, _ in per_eye])
    is_closed = np.logical_and.reduce([c for _, c in per_eye])
    seen_open = False
    seen_closed = False
    for op, cl in zip(is_open, is_closed, strict=True):
        if op:
            if seen_closed:
                return True
            seen_open = True
        elif cl and seen_open:
            seen_closed = True
    return False
