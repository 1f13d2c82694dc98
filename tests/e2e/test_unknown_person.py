"""An unknown person lingering at the door (no code) is identified 1:N and alerted on."""

from __future__ import annotations

from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.core import MotionDetected, Tick
from appliance.door import Door
from appliance.enroll import enroll_user
from appliance.hardware.camera import ReplayCamera
from appliance.security import pin_hasher
from tests.support.waiting import FakeClock

pytestmark = pytest.mark.faces


@pytest.mark.parametrize(
    ("seen", "alerted"),
    [("biden/biden2.jpg", True), ("obama/obama2.jpg", False)],
)
def test_lingering_face_is_identified(
    config,
    db,
    face_engine,
    faces_dir: Path,
    seen: str,
    alerted: bool,
) -> None:
    people = faces_dir / "people"
    enroll_user(db, face_engine, pin_hasher(config), number=1, name="Barack", pin="1234",
                photos=[people / "obama" / "obama1.jpg"])  # fmt: skip
    clock = FakeClock(1000.0)
    door = Door(config, db, factory=MockFactory(), camera=ReplayCamera([people / seen]),
                face_engine=face_engine, clock=clock, inline_face=True)  # fmt: skip
    try:
        door.handle(MotionDetected())
        clock.t += config.access.unknown_person_after_s
        door.handle(Tick())
        door.pump()
    finally:
        door.close()
    kinds = [e.kind for e in door.recent]
    assert ("unknown_person" in kinds) is alerted
    if alerted:
        ev = next(e for e in door.recent if e.kind == "unknown_person")
        assert ev.alert_id and ev.snapshot and ev.distance > config.vision.threshold
        assert (config.data_dir / ev.snapshot).read_bytes()[:2] == b"\xff\xd8"
