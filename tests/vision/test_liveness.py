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
