"""Whole visits end to end: `doorward enroll`, then `doorward simulate` on real photos.

The door runs its real state machine, GPIO devices on MockFactory, the replay camera and the
face pipeline; the enrollment photos are never the photos shown at the door.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from appliance.cli import main

pytestmark = pytest.mark.faces


@pytest.fixture
def setup(tmp_path: Path, faces_dir: Path):
    data = tmp_path / "var"
    cfg = tmp_path / "doorward.toml"
    cfg.write_text(
        f'[device]\ndata_dir = "{data}"\n[access]\nrelay_pulse_s = 4.0\n'
        "[vision]\nliveness = false\n",
        encoding="utf-8",
    )
    people = faces_dir / "people"
    rc = main(
        [
            "--config", str(cfg), "enroll", "--number", "7", "--name", "Barack",
            "--pin", "2468", "--duress-pin", "1357",
            "--photo", str(people / "obama" / "obama1.jpg"),
            "--photo", str(people / "obama" / "obama3.jpg"),
        ]
    )  # fmt: skip
    assert rc == 0
    return cfg, data, people


def visit(cfg: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[list[dict], dict]:
    capsys.readouterr()
    assert main(["--config", str(cfg), "simulate", *args]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[-1]["event"] == "summary"
    return lines[:-1], lines[-1]


def outbox(data: Path) -> list[tuple]:
    with sqlite3.connect(data / "doorward.db") as conn:
        return conn.execute(
            "SELECT o.kind, o.snapshot_path, e.snapshot_path, o.priority FROM outbox o "
            "JOIN access_events e ON e.id = o.event_id ORDER BY o.created_at"
        ).fetchall()


def is_jpeg(path: Path) -> bool:
    data = path.read_bytes()
    return (
        data[:3] == b"\xff\xd8\xff" and cv2.imdecode(np.frombuffer(data, np.uint8), 1) is not None
    )


def test_own_face_grants_one_pulse_of_the_configured_time(setup, capsys) -> None:
    cfg, data, people = setup
    events, summary = visit(
        cfg, capsys, "--keys", "7*2468#", "--camera", str(people / "obama" / "obama2.jpg"),
        "--door", "open",
    )  # fmt: skip
    assert summary["granted"] is True
    assert summary["relay_pulses"] == 1
    assert summary["pulse_s"] == [4.0]
    assert summary["alerts_queued"] == 0
    granted = next(e for e in events if e["event"] == "granted")
    assert granted["user_number"] == 7 and granted["distance"] < 0.5
    assert [e["event"] for e in events if e["event"].startswith("door")] == [
        "door_opened",
        "door_closed",
    ]
    assert not any(e["event"] == "forced" for e in events)


def test_another_persons_face_is_denied_with_snapshot_and_alert(setup, capsys) -> None:
    cfg, data, people = setup
    events, summary = visit(
        cfg, capsys, "--keys", "7*2468#", "--camera", str(people / "biden" / "biden2.jpg")
    )
    assert summary == {
        "event": "summary", "granted": False, "relay_pulses": 0, "pulse_s": [],
        "alerts_queued": 1, "guest_entry": False, "held": None, "lockdown": False,
    }  # fmt: skip
    denied = events[-1]
    assert denied["event"] == "denied_face" and denied["distance"] > 0.6
    snap = data / denied["snapshot"]
    assert is_jpeg(snap)
    [(kind, alert_snap, event_snap, _prio)] = outbox(data)
    assert kind == "denied_face" and alert_snap == event_snap == denied["snapshot"]


def test_no_face_in_the_frame_is_denied(setup, capsys, tmp_path: Path) -> None:
    cfg, data, _ = setup
    empty = tmp_path / "hallway.jpg"
    rng = np.random.default_rng(1)
    cv2.imwrite(str(empty), rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))
    events, summary = visit(cfg, capsys, "--keys", "7*2468#", "--camera", str(empty))
    assert summary["granted"] is False and summary["relay_pulses"] == 0
    assert events[-1]["event"] == "denied_no_face"
    assert summary["alerts_queued"] == 1


def test_five_wrong_codes_lock_the_keypad_out(setup, capsys) -> None:
    cfg, data, people = setup
    keys = "7*1111#" * 5 + "7*2468#"
    events, summary = visit(
        cfg, capsys, "--keys", keys, "--camera", str(people / "obama" / "obama2.jpg")
    )
    kinds = [e["event"] for e in events]
    assert kinds.count("code_wrong") == 5
    assert "lockout" in kinds
    # the right code typed during the lockout opens nothing and is not an event of its own
    # (counted in lockout_ended)
    assert kinds[-1] == "lockout" and "locked_out" not in kinds
    assert summary["granted"] is False and summary["relay_pulses"] == 0
    assert [row[0] for row in outbox(data)] == ["lockout"]


def test_duress_pin_opens_the_door_and_raises_a_duress_alert(setup, capsys) -> None:
    cfg, data, people = setup
    events, summary = visit(
        cfg, capsys, "--keys", "7*1357#", "--camera", str(people / "obama" / "obama4.jpg")
    )
    kinds = [e["event"] for e in events]
    assert kinds == ["duress", "granted"]
    assert summary["granted"] is True and summary["relay_pulses"] == 1
    assert events[1]["detail"] == {"duress": True}
    [(kind, _, _, priority)] = outbox(data)
    assert kind == "duress" and priority > 0  # never suppressed by rate limits


def test_forced_door_raises_an_alert(setup, capsys) -> None:
    cfg, data, people = setup
    events, summary = visit(
        cfg, capsys, "--keys", "", "--camera", str(people / "obama" / "obama2.jpg"),
        "--door", "forced",
    )  # fmt: skip
    assert events[0]["event"] == "forced"
    assert summary["alerts_queued"] == 1 and summary["relay_pulses"] == 0
    assert is_jpeg(data / events[0]["snapshot"])


def test_still_photo_fails_liveness_when_it_is_on(setup, capsys) -> None:
    cfg, data, people = setup
    events, summary = visit(
        cfg, capsys, "--keys", "7*2468#", "--camera", str(people / "obama" / "obama2.jpg"),
        "--liveness", "on",
    )  # fmt: skip
    assert summary["granted"] is False
    assert events[-1]["event"] == "denied_liveness"


def test_enroll_rejects_photos_naming_the_file(setup, capsys, tmp_path: Path, faces_dir) -> None:
    cfg, data, people = setup
    scene = faces_dir / "scenes" / "two_people.jpg"
    capsys.readouterr()
    rc = main(["--config", str(cfg), "enroll", "--number", "8", "--name", "X", "--pin", "1111",
               "--photo", str(scene)])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err
    assert "two_people.jpg" in err and "face" in err
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 300, 3), 128, np.uint8))
    rc = main(["--config", str(cfg), "enroll", "--number", "8", "--name", "X", "--pin", "1111",
               "--photo", str(blank)])  # fmt: skip
    assert rc == 2
    assert "blank.png" in capsys.readouterr().err
    rc = main(["--config", str(cfg), "enroll", "--number", "7", "--name", "Dup", "--pin", "1111",
               "--photo", str(people / "biden" / "biden1.jpg")])  # fmt: skip
    assert rc == 2
    assert "already exists" in capsys.readouterr().err
    with sqlite3.connect(data / "doorward.db") as conn:
        assert conn.execute("SELECT number, name FROM users").fetchall() == [(7, "Barack")]


def test_a_user_enrolled_in_the_central_database_is_granted_by_simulate(
    tmp_path: Path, faces_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """$DOORWARD_DATABASE_URL names the central database: `enroll` writes there, and
    `simulate` decides from the replica synced from it (it once decided from an empty replica
    nobody synced, so a right code was `code_wrong`)."""
    data = tmp_path / "var"
    cfg = tmp_path / "doorward.toml"
    cfg.write_text(f'[device]\ndata_dir = "{data}"\n[vision]\nliveness = false\n', "utf-8")
    monkeypatch.setenv("DOORWARD_DATABASE_URL", f"sqlite:///{tmp_path / 'central.db'}")
    people = faces_dir / "people"
    assert main(["--config", str(cfg), "enroll", "--number", "3", "--name", "Joe", "--pin",
                 "1357", "--photo", str(people / "biden" / "biden1.jpg")]) == 0  # fmt: skip
    events, summary = visit(cfg, capsys, "--keys", "3*1357#", "--camera",
                            str(people / "biden" / "biden2.jpg"))  # fmt: skip
    assert [e["event"] for e in events if e["event"] in ("granted", "code_wrong")] == ["granted"]
