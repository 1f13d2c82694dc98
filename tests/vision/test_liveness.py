"""Blink test over eye-aspect-ratio series."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.vision.liveness import blink_detected, eye_aspect_ratio


def test_eye_aspect_ratio_of_a_known_eye() -> None:
    eye = np.array([[0, 0], [1, 1], [2, 1], [3, 0], [2, -1], [1, -1]], float)
    assert eye_aspect_ratio(eye) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "series,expected",
    [
        ([0.30, 0.31, 0.12, 0.29, 0.30], True),  # open, closed, open
        ([0.30, 0.30, 0.30, 0.30, 0.30], False),  # still photo
        ([0.30, 0.301, 0.299, 0.30], False),  # landmark jitter
        ([0.30, 0.27, 0.22, 0.18, 0.15], False),  # photo tilted away: never re-opens
        ([0.12, 0.13, 0.30, 0.31], False),  # closed at first, no blink seen
        ([0.3, 0.12], False),  # too short
    ],
)
def test_blink_detected(series: list[float], expected: bool) -> None:
    assert blink_detected(series) is expected


def test_a_blink_shuts_both_eyes_at_once() -> None:
    right = [0.30, 0.31, 0.30, 0.11, 0.29, 0.30]
    left = [0.29, 0.30, 0.30, 0.12, 0.30, 0.29]
    assert blink_detected(list(zip(right, left, strict=True))) is True


def test_one_eye_jumping_is_a_landmark_error_not_a_blink() -> None:
    """The pattern a partial face on a moving print produced: one eye's landmarks jump."""
    mean = [0.263, 0.209, 0.175, 0.241, 0.472, 0.249, 0.261, 0.230, 0.256, 0.257]  # recorded
    left = [0.25] * len(mean)
    right = [2 * m - lv for m, lv in zip(mean, left, strict=True)]  # only the right eye moves
    assert blink_detected(mean) is True  # the mean of both eyes alone was fooled
    assert blink_detected(list(zip(right, left, strict=True))) is False


def test_too_few_frames_to_judge() -> None:
    assert blink_detected([(0.30, 0.30), (0.10, 0.10), (0.30, 0.30)]) is False
