"""dlib's encoder holds the GIL for its whole pass, and the relay's pulse ends on a Python
timer thread: a pass running when a pulse is due to end would stretch the pulse by what is
left of the pass. The engine's timing guard (the relay's `wait_for_pulse_end`) makes the pass
wait for the pulse's end instead, and the door wires that guard to its relay."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from appliance.door import Door
from appliance.hardware.relay import LockRelay
from appliance.store.central import open_local_replica
from appliance.vision.image import load_image

from .doubles import DummyCamera, make_config

PULSE_S = 0.8
LATE_S = 0.05  # the timer thread's own wake-up, with no pass in its way
JITTERS = 2  # two encoder passes in one call: one long hold of the GIL


@pytest.fixture(scope="module")
def photo(faces_dir: Path) -> np.ndarray:
    return load_image(faces_dir / "people" / "biden" / "biden1.jpg")


def one_call_s(engine, image: np.ndarray) -> float:
    """How long one encoder call of JITTERS passes takes here (the median of five)."""
    face = engine.detect(image)[0]
    took = []
    for _ in range(5):
        t0 = time.monotonic()
        engine.encode(image, face, num_jitters=JITTERS)
        took.append(time.monotonic() - t0)
    return float(np.median(took))


def pulse_with_a_pass_at_its_end(relay: LockRelay, engine, image: np.ndarray, call_s: float):
    """Unlock for PULSE_S and start an encoder call a third of its length before the pulse's
    end; (the pulse's length as the relay switched it, when the call began, when it
    returned). A start the shared machine delayed past the pulse's end is tried again (up to
    three pulses): the scenario needs the call to span the end."""
    face = engine.detect(image)[0]
    off_at: float | None = None
    for _ in range(3):
        relay.unlock(PULSE_S)
        on_at = relay.pulses[-1][0]
        # not a stand-in for an event: the test places the call so that it spans the end
        threading.Event().wait(max(0.0, on_at + PULSE_S - call_s / 3 - time.monotonic()))
        began = time.monotonic()
        engine.encode(image, face, num_jitters=JITTERS)
        returned = time.monotonic()
        assert relay.locked
        off_at = relay.pulses[-1][1]
        assert off_at is not None
        if began - on_at < PULSE_S - 0.01:
            break
    assert off_at is not None
    return off_at - on_at, began - on_at, returned - on_at


def test_an_encoder_pass_does_not_stretch_a_pulse_that_ends_during_it(face_engine, photo) -> None:
    call_s = one_call_s(face_engine, photo)
    relay = LockRelay(17, pin_factory=MockFactory())
    try:
        # without the guard the pass really does stretch the pulse (what the guard is for)
        unguarded, began, _ = pulse_with_a_pass_at_its_end(relay, face_engine, photo, call_s)
        assert began < PULSE_S
        assert unguarded > PULSE_S + call_s / 4, f"unguarded {unguarded:.3f} s, call {call_s:.3f} s"

        remove = face_engine.add_timing_guard(relay.wait_for_pulse_end)
        try:
            pulse, began, returned = pulse_with_a_pass_at_its_end(relay, face_engine, photo, call_s)
        finally:
            remove()
        assert PULSE_S <= pulse <= PULSE_S + LATE_S, f"guarded pulse {pulse:.3f} s"
        print(f"pulse_under_encoder guarded={pulse:.3f}s unguarded={unguarded:.3f}s "
              f"of {PULSE_S}s, encoder call {call_s:.3f}s")  # fmt: skip
        # the call was asked for before the pulse's end and ran after it
        assert began < PULSE_S and returned >= pulse + call_s / 2
    finally:
        relay.close()


def test_a_pulse_far_from_its_end_and_a_hold_do_not_delay_the_encoder(face_engine) -> None:
    relay = LockRelay(17, pin_factory=MockFactory())
    try:
        relay.unlock(30.0)
        assert relay.wait_for_pulse_end(0.5) < 0.05
        relay.hold(0.2)  # a lease ending soon is renewed by the loop, never waited for
        assert relay.wait_for_pulse_end(0.5) < 0.05
        relay.lock()
        assert relay.wait_for_pulse_end(0.5) < 0.05
    finally:
        relay.close()


def test_the_door_guards_its_pulses_against_its_face_engine(
    tmp_path: Path, face_engine, photo
) -> None:
    call_s = one_call_s(face_engine, photo)
    config = make_config(tmp_path / "var", health={"storage_reserve_mb": 0})
    db = open_local_replica(config)
    door = Door(config, db, factory=MockFactory(), camera=DummyCamera(), face_engine=face_engine)
    try:
        pulse, began, _ = pulse_with_a_pass_at_its_end(door.board.relay, face_engine, photo, call_s)
        assert began < PULSE_S and PULSE_S <= pulse <= PULSE_S + LATE_S, f"pulse {pulse:.3f} s"
    finally:
        door.close()
        db.close()
    # a closed door's relay no longer holds the engine up: its guard went with it
    relay = LockRelay(18, pin_factory=MockFactory())
    try:
        pulse, _, _ = pulse_with_a_pass_at_its_end(relay, face_engine, photo, call_s)
        assert pulse > PULSE_S + call_s / 4
    finally:
        relay.close()


def test_a_timer_that_fired_as_the_next_pulse_began_does_not_end_that_pulse() -> None:
    """The first pulse's timer fires, but the loop gets the relay first: it ends that pulse
    and starts the next (the exit button handled at the pulse's very end). The fired timer
    then gets the relay: it must not switch off the new pulse."""
    relay = LockRelay(17, pin_factory=MockFactory())
    real_expire = relay._expire
    fired, go = threading.Event(), threading.Event()

    def late_expire(lease: bool) -> None:  # the timer thread, held up before the mutex
        fired.set()
        go.wait(5)
        real_expire(lease)

    relay._expire = late_expire  # type: ignore[method-assign]
    try:
        relay.unlock(0.05)
        first = relay._timer
        assert first is not None and fired.wait(5)  # the first pulse's timer has fired
        relay._expire = real_expire  # type: ignore[method-assign]
        relay.lock()  # the loop: the machine's Lock at the pulse's end
        relay.unlock(5.0)  # the loop: the exit button's pulse
        go.set()
        first.join(5)
        assert not first.is_alive()
        assert not relay.locked, f"the 5 s pulse was ended by the old timer: {relay.pulses}"
        assert len(relay.pulses) == 2 and relay.pulses[-1][1] is None
    finally:
        relay.close()
