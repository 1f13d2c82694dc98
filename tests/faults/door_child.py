"""A door process for kill -9 tests: `python door_child.py DATA_DIR MODE`.

MODE lockout: five wrong codes (the budget is saved before each refusal shows), then
"locked" on stdout, then it waits to be killed. MODE pulse: user 3 types the right code, the
face matches, and "pulsing" is printed once the grant is recorded with the relay still on.
MODE records: records access events in a loop and prints each event id once its commit
returned, until killed.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from appliance.config import Config
from appliance.core import KeyPressed, Record
from appliance.door import Door
from appliance.store.central import open_local_replica
from tests.faults.doubles import DummyCamera


class _NoFace:
    def verify(self, *a: object, **k: object) -> object:
        raise AssertionError("no face step here")


def main() -> None:
    data_dir, mode = Path(sys.argv[1]), sys.argv[2]
    config = Config.convert(
        {"device": {"data_dir": str(data_dir)}, "hardware": {"pin_factory": "mock"},
         "health": {"storage_reserve_mb": 0}}
    )  # fmt: skip
    db = open_local_replica(config)
    if mode == "pulse":
        from tests.faults.doubles import MatchEngine

        face: object = MatchEngine()
    else:
        face = _NoFace()
    door = Door(config, db, factory=MockFactory(), camera=DummyCamera(), face_engine=face,
                inline_face=mode == "pulse")  # fmt: skip
    if mode == "lockout":
        for _ in range(5):
            for k in "9*0000#":
                door.handle(KeyPressed(k))
        print("locked", flush=True)
    elif mode == "pulse":
        door.listeners.append(
            lambda ev: ev.kind == "granted" and not door.board.relay.locked
            and print("pulsing", flush=True)
        )  # fmt: skip
        for k in "3*2468#":
            door.handle(KeyPressed(k))
        door.pump()  # the face answer (inline) -> Unlock, granted
    elif mode == "records":
        i = 0
        while True:
            i += 1
            door.recorder.record(Record("code_wrong", user_number=i, reason="wrong_code"))
            if door.held_count == 0:  # committed, not held in memory
                print(door.recent[-1].id, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
