"""One set of plain words for events, states and durations (terminal and admin page)."""

from __future__ import annotations

import pytest

from appliance.core.kinds import EventKind
from appliance.core.wording import duration, outcome_line, person, state_words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 s"), (5.0, "5 s"), (59.4, "59 s"), (60, "1 min"), (172.1, "2 min 52 s"),
     (3600, "1 h"), (7300, "2 h 1 min"), (86400, "1 day"), (90000, "1 day 1 h"),
     (3 * 86400, "3 days"), (None, "-")],
)  # fmt: skip
def test_durations_read_as_a_person_says_them(seconds, words) -> None:
    assert duration(seconds) == words


def test_states_are_words_not_identifiers() -> None:
    assert state_words("locked_out") == "Keypad locked out"
    assert state_words("idle") == "Ready"
    assert state_words("something_new") == "Something new"
    assert state_words(None) == "Unknown"


def test_outcome_lines_name_the_person_and_say_what_follows() -> None:
    assert outcome_line("granted", number=1, name="Kit Harington") == "GRANTED  Kit Harington (1)"
    assert outcome_line("granted", number=7) == "GRANTED  user 7"
    assert (
        outcome_line("denied_face", number=1, name="Kit", reason="mismatch", alerted=True)
        == "DENIED  face does not match user 1 - alert queued"
    )
    assert outcome_line("code_wrong", number=3, reason="wrong_code") == "DENIED  wrong code"
    lock = outcome_line("lockout", reason="wrong_codes", alerted=True, detail={"lockout_s": 300})
    assert lock == "LOCKED OUT  keypad locked for 5 min: too many wrong codes - alert queued"
    assert outcome_line("forced", alerted=True) == "ALERT  Door forced open - alert queued"
    assert outcome_line("motion") is None and outcome_line("heartbeat") is None
    assert person(None, None) == "" and person(2, None) == "user 2"


def test_every_alerted_kind_has_a_line() -> None:
    for kind in EventKind.where("alerted"):
        line = outcome_line(kind, number=1, name="A", alerted=True)
        assert line and line.endswith("alert queued"), kind
