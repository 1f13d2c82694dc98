"""The terminal of `doorward run` on simulated hardware: keys, commands and the plain lines a
newcomer reads (GRANTED / DENIED), driven through a real door and real photos."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.cli.terminal import HELP, Terminal, event_printer, user_names
from appliance.door import Door
from appliance.enroll import enroll_user
from appliance.hardware.camera import ReplayCamera
from appliance.security import pin_hasher
from tests.support.waiting import eventually

pytestmark = pytest.mark.faces


@pytest.fixture
def kit_door(config, db, face_engine, faces_dir: Path):
    people = faces_dir / "people"
    enroll_user(db, face_engine, pin_hasher(config, db), number=1, name="Kit Harington",
                pin="2468", photos=[people / "kit_harington" / "kit1.jpg"])  # fmt: skip
    door = Door(
        config,
        db,
        factory=MockFactory(),
        camera=ReplayCamera([]),
        face_engine=face_engine,
        liveness=False,
    )  # the test shows still photos
    out = io.StringIO()
    door.listeners.append(event_printer(user_names(db), out))
    door.start()
    yield door, Terminal(door, out), out, people
    door.close()


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_a_newcomer_switches_the_camera_and_reads_granted_then_denied(kit_door) -> None:
    door, term, out, people = kit_door
    term.handle(f"camera {people / 'kit_harington' / 'kit2.jpg'}")
    assert lines(out)[-1].startswith("doorward: the camera now shows ")
    term.handle("1*2468#")
    assert eventually(lambda: "GRANTED  Kit Harington (1)" in lines(out), timeout=90)
    assert eventually(lambda: door.status()["state"] == "idle" and door.status()["locked"],
                      timeout=60)  # fmt: skip
    term.handle(f"camera {people / 'obama' / 'obama1.jpg'}")
    term.handle("1*2468#")
    assert eventually(
        lambda: "DENIED  face does not match user 1 - alert queued" in lines(out), timeout=90
    )


def test_an_empty_doorstep_is_denied_as_no_face(kit_door) -> None:
    door, term, out, _ = kit_door
    term.handle("camera")
    assert lines(out)[-1] == "doorward: the camera shows an empty doorstep (no face)"
    term.handle("1*2468#")
    assert eventually(lambda: "DENIED  no face seen for user 1 - alert queued" in lines(out),
                      timeout=90)  # fmt: skip


def test_help_status_and_mistakes_get_plain_answers(kit_door, tmp_path: Path) -> None:
    door, term, out, people = kit_door
    term.handle("help")
    assert HELP in out.getvalue() and "camera PATH" in HELP
    term.handle("status")
    assert lines(out)[-1] == "doorward: Ready; lock locked; door closed"
    term.handle(f"camera {tmp_path / 'nope.jpg'}")
    assert (
        lines(out)[-1]
        == f"doorward: camera: no such file {tmp_path / 'nope.jpg'}; the camera is unchanged"
    )
    text = tmp_path / "notes.txt"
    text.write_text("x")
    term.handle(f"camera {text}")
    assert "is not an image or video file" in lines(out)[-1]
    assert door.camera.sources == []  # unchanged by either mistake
    term.handle("hello")
    assert (
        lines(out)[-1] == "doorward: 'hello' is neither keys (0-9 * # A-D) nor a command; type help"
    )
    term.handle("9*0000#")
    assert eventually(lambda: "DENIED  wrong code" in lines(out))
