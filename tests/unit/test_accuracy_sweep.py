"""The dark-threshold sweep of bench.face_accuracy counts accepts and rejects as the door
decides them: accept at distance <= threshold, a pair with no face never accepted."""

from __future__ import annotations

from bench.face_accuracy import threshold_table


def test_counts_at_each_threshold_follow_the_door_rule() -> None:
    rows = [
        (True, 0.40),
        (True, 0.56),
        (True, None),  # genuine, no face found: a false reject at every threshold
        (False, 0.55),
        (False, 0.58),
        (False, None),  # impostor, no face: never an accept
        (False, 0.70),
    ]
    table = threshold_table(rows, [0.55, 0.56, 0.58])
    assert table == [
        {"threshold": 0.55, "false_accepts": "1/4", "false_rejects": "2/3"},
        {"threshold": 0.56, "false_accepts": "1/4", "false_rejects": "1/3"},
        {"threshold": 0.58, "false_accepts": "2/4", "false_rejects": "1/3"},
    ]
