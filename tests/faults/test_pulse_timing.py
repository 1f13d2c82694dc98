"""The relay's pulse ends on a Python timer thread, and the keypad is scanned by another: work
on the door's thread that held the GIL would stretch a pulse and stall the scan. dlib's own
encoder holds it for its whole pass (the control below shows it: that is what these tests
would catch); the door's encoder (appliance/vision/resnet.py) runs in numpy's BLAS with the
GIL released, so a pulse that ends during face checks ends on time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from appliance.hardware.relay import LockRelay
from appliance.vision.image import load_image
from appliance.vision.models import ENCODER, model_path
from tests.support.waiting import eventually

PULSE_S = 0.8
LATE_S = 0.05  # the timer thread's own wake-up, with nothing in its way
PASSES = 8  # encoder passes run back to back across the pulse's end
STALL_S = 0.04  # the scan thread's worst gap allowed during face checks (it ticks each 2 ms)


@pytest.fixture(scope="module")
def photo(faces_dir: Path) -> np.ndarray:
    return load_image(faces_dir / "people" / "biden" / "biden1.jpg")


@pytest.fixture(scope="module")
def work(face_engine, photo) -> dict[str, Callable[[], object]]:
    """The door's face work (PASSES encoder passes) and, as the control, dlib's own encoder
    holding the GIL for about as long in one call."""
    import dlib

    face = face_engine.detect(photo)[0]
    chip = face_engine.probe(photo, face)
    dlib_encoder = dlib.face_recognition_model_v1(str(model_path(ENCODER)))

    def door() -> None:
        for _ in range(PASSES):
            face_engine.encode(photo, face)

    def dlib_control() -> None:
        dlib_encoder.compute_face_descriptor(chip, 2)  # two jittered passes in one call

    return {"door": door, "dlib": dlib_control}


def took(fn: Callable[[], object]) -> float:
    runs = []
    for _ in range(3):
        t0 = time.monotonic()
        fn()
        runs.append(time.monotonic() - t0)
    return float(np.median(runs))


def pulse_with_work_at_its_end(relay: LockRelay, fn: Callable[[], object], call_s: float):
    """Unlock for PULSE_S and start `fn` a third of its length before the pulse's end;
    (the pulse's length as the relay switched it, when `fn` began, when it returned). A run
    that did not span the pulse's end (the shared machine delayed the start past it, or the
    work ran faster than timed) is tried again, up to five pulses: the scenario needs it."""
    spans = False
    for _ in range(5):
        relay.unlock(PULSE_S)
        on_at = relay.pulses[-1][0]
        # not a stand-in for an event: the test places the work so that it spans the end
        threading.Event().wait(max(0.0, on_at + PULSE_S - call_s / 3 - time.monotonic()))
        began = time.monotonic()
        fn()
        returned = time.monotonic()
        # work that ended before the pulse's end leaves its timer to come (then: run again)
        eventually(lambda: relay.locked, 5.0, interval=0.01, what="the pulse's timer locks")
        off_at = relay.pulses[-1][1]
        assert off_at is not None
        spans = began - on_at < PULSE_S - 0.01 and returned - on_at > PULSE_S + 0.01
        if spans:
            break
    assert spans, "the work never ran across the pulse's end"
    return off_at - on_at, began - on_at, returned - on_at


def test_face_checks_running_across_a_pulses_end_do_not_stretch_it(work) -> None:
    relay = LockRelay(17, pin_factory=MockFactory())
    try:
        control_s = took(work["dlib"])
        stretched, began, _ = pulse_with_work_at_its_end(relay, work["dlib"], control_s)
        assert began < PULSE_S
        # the scenario is real: work holding the GIL stretches the pulse
        assert stretched > PULSE_S + control_s / 4, f"dlib {stretched:.3f} s, {control_s:.3f} s"

        call_s = took(work["door"])
        pulse, began, returned = pulse_with_work_at_its_end(relay, work["door"], call_s)
        assert PULSE_S <= pulse <= PULSE_S + LATE_S, f"pulse {pulse:.3f} s"
        assert began < PULSE_S < returned  # the passes ran across the pulse's end
        print(f"pulse_under_encoder door={pulse:.3f}s dlib_encoder={stretched:.3f}s "
              f"of {PULSE_S}s; {PASSES} passes {call_s:.3f}s")  # fmt: skip
    finally:
        relay.close()


def worst_gap_s(fn: Callable[[], object]) -> float:
    """The longest a thread ticking every 2 ms (the keypad's scan) went without running
    while `fn` ran on this thread."""
    stop = threading.Event()
    ticks: list[float] = []

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.monotonic())
            stop.wait(0.002)

    t = threading.Thread(target=ticker, daemon=True)
    t.start()
    while not ticks:  # the ticker is running before the work starts
        stop.wait(0.001)
    start = time.monotonic()
    fn()
    end = time.monotonic()
    stop.set()
    t.join(5)
    inside = [x for x in ticks if start <= x <= end]
    marks = [start, *inside, end]
    return max(b - a for a, b in zip(marks, marks[1:], strict=False))


def test_the_keypad_scan_keeps_running_through_face_checks(work) -> None:
    control = worst_gap_s(work["dlib"])
    assert control > 0.06, f"dlib's encoder let the scan run ({control:.3f} s gap)"
    door = worst_gap_s(work["door"])
    assert door < STALL_S, f"the scan stalled {door * 1000:.1f} ms during face checks"
    print(f"scan_gap door={door * 1000:.1f}ms dlib_encoder={control * 1000:.1f}ms")


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
