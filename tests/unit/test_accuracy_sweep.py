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


def _row(fr: int, genuine: int, fa: int = 0, no_face: int = 0) -> dict[str, object]:
    return {"false_rejects": fr, "genuine": genuine, "false_accepts": fa, "no_face": no_face,
            "accepted": ["a~b:0.5"] * fa}  # fmt: skip


def test_dark_target_is_judged_on_both_held_out_sets_together() -> None:
    from bench.face_accuracy import target_line

    def figs(h1: tuple[int, int], h2: tuple[int, int], fa: int = 0) -> dict[str, object]:
        return {
            "threshold": 0.59,
            "heldout": {"very_poor_light": {"door": _row(h1[0], 38), "seed": _row(h1[1], 38)}},
            "heldout2": {"very_poor_light": {"door": _row(h2[0], 66, fa), "seed": _row(h2[1], 66)}},
        }

    # one more reject than the prototype on the first set, two fewer on the second: met
    met = target_line(figs((2, 1), (3, 5)))
    assert "**met**" in met and "5/104 false rejects" in met and "prototype's 6" in met
    # fewer on the first set, more in total: not met
    assert "**NOT met**" in target_line(figs((0, 1), (6, 4)))
    # a false accept anywhere fails the target, and is named
    missed = target_line(figs((0, 1), (0, 1), fa=1))
    assert "**NOT met**" in missed and "a~b:0.5" in missed
