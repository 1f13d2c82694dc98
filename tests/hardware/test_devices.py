"""GPIO devices on gpiozero's MockFactory: the same classes the Pi uses."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from appliance.config import HardwareConfig, PinsConfig
from appliance.hardware.board import Board, InputCallbacks
from appliance.hardware.camera import CameraError, ReplayCamera
from appliance.hardware.keypad import Keypad
from appliance.hardware.relay import LockRelay
from appliance.hardware.simulator import DoorSimulator, KeypadSimulator
from tests.support.waiting import eventually


@pytest.fixture
def factory() -> MockFactory:
    return MockFactory()


def test_relay_is_locked_the_moment_it_is_built_even_if_the_pin_was_high(
    factory: MockFactory,
) -> None:
    pin = factory.pin(17)
    pin.function = "output"
    pin.state = True  # left energised by a crashed run
    relay = LockRelay(17, pin_factory=factory)
    assert relay.locked and pin.state is False


@pytest.mark.parametrize("active_high", [True, False])
def test_relay_polarity_locked_means_de_energised(factory: MockFactory, active_high: bool) -> None:
    relay = LockRelay(17, active_high=active_high, pin_factory=factory)
    pin = factory.pin(17)
    # de-energised = the pin sits at the coil's inactive level
    assert pin.state is (not active_high)
    relay.unlock(5)
    assert pin.state is active_high
    relay.lock()
    assert pin.state is (not active_high)
    relay.close()


def test_relay_ends_its_pulse_by_itself(factory: MockFactory) -> None:
    relay = LockRelay(17, pin_factory=factory)
    relay.unlock(0.15)
    assert not relay.locked
    eventually(lambda: relay.locked, timeout=5, what="the relay's own timer locks it")
    on, off = relay.pulses[0]
    assert off is not None and 0.1 <= off - on < 0.35
    relay.close()


def test_relay_close_locks_it(factory: MockFactory) -> None:
    relay = LockRelay(17, pin_factory=factory)
    relay.unlock(30)
    relay.close()
    assert factory.pin(17).state is False


def test_relay_rejects_a_nonpositive_pulse(factory: MockFactory) -> None:
    relay = LockRelay(17, pin_factory=factory)
    with pytest.raises(ValueError, match="positive"):
        relay.unlock(0)
    assert relay.locked


def _keypad(factory: MockFactory, **kw) -> tuple[Keypad, KeypadSimulator, list[str]]:
    pins = PinsConfig()
    sim = KeypadSimulator(factory, pins.keypad_rows, pins.keypad_cols)
    kp = Keypad(pins.keypad_rows, pins.keypad_cols, pin_factory=factory, **kw)
    got: list[str] = []
    kp.when_key = got.append
    return kp, sim, got


def test_keypad_reads_every_key_of_the_matrix(factory: MockFactory) -> None:
    kp, sim, got = _keypad(factory)
    for key in "123A456B789C*0#D":
        sim.tap(key, kp)
    assert "".join(got) == "123A456B789C*0#D"


def test_a_running_keypad_reports_every_repeated_key_when_tapped(factory: MockFactory) -> None:
    """Guest codes are random digits, so repeats ("55") are common: a tap waits until the
    scanner has seen the previous key released before pressing the next."""
    import time

    kp, sim, got = _keypad(factory, scan_interval_ms=20)
    real_scan = kp.scan
    scans = 0

    def loaded_scan():  # a busy machine: every other scan comes late
        nonlocal scans
        scans += 1
        if scans % 2:
            time.sleep(0.1)
        return real_scan()

    kp.scan = loaded_scan  # type: ignore[method-assign]
    kp.start()
    try:
        for key in "5555*00#":
            sim.tap(key, kp)
    finally:
        kp.close()
    assert "".join(got) == "5555*00#"


def test_keypad_debounces_a_bouncing_contact(factory: MockFactory) -> None:
    kp, sim, got = _keypad(factory, debounce_ms=30, scan_interval_ms=10)
    # contact bounce: pressed for one scan, released for one, then held
    sim.hold("5")
    kp.scan()
    sim.release()
    kp.scan()
    sim.hold("5")
    for _ in range(5):
        kp.scan()
    sim.release()
    for _ in range(5):
        kp.scan()
    assert got == ["5"]


def test_keypad_holding_a_key_reports_it_once(factory: MockFactory) -> None:
    kp, sim, got = _keypad(factory)
    sim.hold("7")
    for _ in range(50):
        kp.scan()
    assert got == ["7"]


def test_keypad_ignores_two_keys_at_once(factory: MockFactory) -> None:
    kp, sim, got = _keypad(factory)
    sim.hold("1")
    sim.hold("5")
    for _ in range(10):
        kp.scan()
    assert got == []


def test_keypad_scan_thread_reports_taps(factory: MockFactory) -> None:
    kp, sim, got = _keypad(factory)
    kp.start()
    try:
        for key in "42#":
            sim.tap(key, kp)
    finally:
        kp.close()
    assert got == ["4", "2", "#"]


def test_keypad_layout_must_match_pins(factory: MockFactory) -> None:
    with pytest.raises(ValueError, match="layout"):
        Keypad([5, 6, 13, 19], [12, 16, 20], pin_factory=factory)


def test_board_inputs_reach_their_callbacks(factory: MockFactory) -> None:
    cfg = HardwareConfig()
    sim = DoorSimulator(factory, cfg)
    board = Board(cfg, factory, time.monotonic)
    sim.set_resting()
    got: list[str] = []
    board.connect(
        InputCallbacks(
            motion=lambda: got.append("motion"),
            door_opened=lambda: got.append("opened"),
            door_closed=lambda: got.append("closed"),
            exit_pressed=lambda: got.append("exit"),
            tamper=lambda: got.append("tamper"),
            key=got.append,
        )
    )
    assert not board.door_is_open and not board.tamper_alarm and board.relay.locked
    sim.open_door()
    assert board.door_is_open
    sim.close_door()
    sim.press_exit()
    sim.trigger_tamper()
    assert board.tamper_alarm
    sim.motion()
    eventually(lambda: "motion" in got, timeout=5, what="the PIR callback")  # its own thread
    board.close()
    assert got == ["opened", "closed", "exit", "tamper", "motion"]


def test_board_with_inverted_contact_polarity(factory: MockFactory) -> None:
    cfg = HardwareConfig(door_contact_closed_when="high", tamper_alarm_when="low")
    sim = DoorSimulator(factory, cfg)
    board = Board(cfg, factory, time.monotonic)
    sim.set_resting()
    assert not board.door_is_open and not board.tamper_alarm
    sim.open_door()
    assert board.door_is_open
    sim.trigger_tamper()
    assert board.tamper_alarm
    board.close()


def test_board_names_the_device_that_failed(factory: MockFactory) -> None:
    factory.pin(4).function = "output"
    factory.pin(4)  # PIR pin fine; now claim the door contact pin with an incompatible class
    from gpiozero import LED

    squatter = LED(27, pin_factory=factory)
    with pytest.raises(Exception, match="door contact on BCM 27"):
        Board(HardwareConfig(), factory, time.monotonic)
    squatter.close()
    assert factory.pin(17).state is False  # the relay was built first and left locked


def test_replay_camera_cycles_images_and_reports_bad_sources(tmp_path: Path) -> None:
    import cv2

    for i in range(2):
        img = np.full((40, 60, 3), 50 * (i + 1), np.uint8)
        cv2.imwrite(str(tmp_path / f"{i}.png"), img)
    cam = ReplayCamera([tmp_path])
    values = [int(cam.read()[0, 0, 0]) for _ in range(4)]
    assert values == [50, 100, 50, 100]
    assert cam.read().shape == (40, 60, 3)
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(CameraError, match="junk.jpg"):
        c = ReplayCamera([tmp_path / "junk.jpg"])
        c.read()
    with pytest.raises(CameraError, match="does not exist"):
        ReplayCamera([tmp_path / "missing.jpg"])


def test_replay_camera_plays_video_frames(faces_dir: Path) -> None:
    cam = ReplayCamera([faces_dir / "video" / "short_hamilton_clip.mp4"])
    a, b = cam.read(), cam.read()
    assert a.ndim == 3 and a.shape == b.shape
    assert not np.array_equal(a, b)  # consecutive video frames, not one image repeated
    cam.close()


def test_replay_camera_without_sources_sees_an_empty_doorstep(tmp_path: Path) -> None:
    cam = ReplayCamera([], empty_size=(320, 240))
    frame = cam.read()
    assert frame.shape == (240, 320, 3) and frame.std() == 0
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.full((10, 20, 3), 200, np.uint8))
    cam.set_sources([tmp_path / "a.png"])
    assert cam.read().shape == (10, 20, 3)


def test_replay_camera_hands_out_one_read_only_array_per_still(tmp_path: Path) -> None:
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), np.full((30, 40, 3), 77, np.uint8))
    cam = ReplayCamera([tmp_path / "a.png"])
    a, b = cam.read(), cam.read()
    assert a is b  # a still image costs one frame of memory, however often it is read
    with pytest.raises(ValueError, match="read-only"):
        a[0, 0, 0] = 1
    mine = np.full((20, 20, 3), 5, np.uint8)
    cam.set_frame(mine)
    mine[0, 0, 0] = 6  # the caller's own array stays writable ...
    assert not cam.read().flags.writeable  # ... while the camera's view of it is not


def test_simulated_pins_remember_a_bounded_history() -> None:
    """The keypad scan toggles row pins forever; their history must not grow with uptime."""
    from gpiozero import LED

    from appliance.hardware.board import make_pin_factory
    from appliance.hardware.simulator import MOCK_PIN_HISTORY, KeypadSimulator

    factory = make_pin_factory("mock")
    sim = KeypadSimulator(factory, [5, 6, 13, 19], [12, 16, 20, 21])
    row = factory.pin(5)
    row.function = "output"  # as the keypad scanner drives it
    led = LED(26, pin_factory=factory)
    for _ in range(MOCK_PIN_HISTORY + 500):
        led.toggle()
        row.state = not row.state
    assert len(led.pin.states) == MOCK_PIN_HISTORY
    assert len(row.states) == MOCK_PIN_HISTORY
    assert led.pin.states[-1].state == led.pin.state  # the newest change is the one kept
    assert sim is not None
    led.close()


class StandInPicamera2:
    """A stand-in for picamera2.Picamera2 that keeps the real one's rules (no Pi here).

    - configure() only while stopped; start() only once configured; capture only while started;
    - formats are DRM fourcc names: "BGR888" is R, G, B in memory, "RGB888" is B, G, R;
    - every buffer is mapped into the process (`mapped_bytes`);
    - `built` counts the objects made, as opening the camera device costs on a Pi.
    """

    built = 0
    colour = (200, 100, 50)  # what the scene in front of the lens is, in R, G, B

    def __init__(self) -> None:
        type(self).built += 1
        self.configured: dict | None = None
        self.started = False
        self.closed = False
        self.starts = 0
        self.mapped_bytes = 0

    def create_video_configuration(self, main: dict, buffer_count: int = 6) -> dict:
        return {"main": dict(main), "buffer_count": buffer_count}

    def configure(self, config: dict) -> None:
        if self.started or self.closed:
            raise RuntimeError("Camera must be stopped before configuring")
        w, h = config["main"]["size"]
        bpp = {"BGR888": 3, "RGB888": 3, "XBGR8888": 4, "XRGB8888": 4}[config["main"]["format"]]
        self.configured = config
        self.mapped_bytes = w * h * bpp * config["buffer_count"]

    def start(self) -> None:
        if self.configured is None or self.closed:
            raise RuntimeError("Camera has not been configured")
        self.started = True
        self.starts += 1

    def capture_array(self, name: str = "main") -> np.ndarray:
        if not self.started:
            raise RuntimeError("Camera is not running")
        main = self.configured["main"]
        w, h = main["size"]
        r, g, b = self.colour
        order = {"BGR888": (r, g, b), "RGB888": (b, g, r)}[main["format"]]
        return np.broadcast_to(np.array(order, np.uint8), (h, w, 3)).copy()

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.started = False
        self.closed = True


@pytest.fixture
def picamera2(monkeypatch: pytest.MonkeyPatch) -> type[StandInPicamera2]:
    import sys
    import types

    StandInPicamera2.built = 0
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=StandInPicamera2))
    return StandInPicamera2


def test_pi_camera_delivers_rgb_frames_within_its_buffer_budget(picamera2) -> None:
    """What the scene shows in R, G, B comes out of read() in R, G, B, and the buffers mapped
    into the door process at 1080p stay under 20 MB (six 4-byte buffers would be 50 MB)."""
    from appliance.hardware.camera.picamera import PiCamera

    cam = PiCamera(1920, 1080)
    frame = cam.read()
    assert frame.shape == (1080, 1920, 3) and frame.flags.c_contiguous
    assert tuple(int(v) for v in frame[540, 960]) == StandInPicamera2.colour
    assert cam._cam.mapped_bytes <= 20 * 1024 * 1024
    cam.close()


def test_pi_camera_is_configured_once_and_started_per_wake(picamera2) -> None:
    """picamera2's own design: one object, configured once, start()/stop() per PIR wake,
    close() at exit; a capture failure (camera lost) rebuilds it on the next wake."""
    from appliance.hardware.camera.picamera import PiCamera

    cam = PiCamera(640, 480)
    for _ in range(5):  # five wakes and sleeps of the door
        cam.start()
        cam.read()
        cam.stop()
    inner = cam._cam
    assert picamera2.built == 1, "the camera object was rebuilt on a wake"
    assert inner.starts == 5 and not inner.started and not inner.closed
    cam.close()
    assert inner.closed
    cam.close()  # idempotent

    cam = PiCamera(640, 480)
    cam.start()
    cam._cam.started = False  # libcamera lost the camera under us
    with pytest.raises(CameraError):
        cam.read()
    frame = cam.read()  # the next wake builds and configures a fresh object
    assert picamera2.built == 3 and frame.shape == (480, 640, 3)
    cam.close()


def test_auto_pin_factory_off_a_pi_says_loudly_that_pins_are_simulated(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`pin_factory = "auto"` falling back to simulated pins is never silent (on a door whose
    Pi detection failed, that is a lock that never opens)."""
    import logging

    from appliance.hardware import board

    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(board, "is_raspberry_pi", lambda: False)
    with caplog.at_level(logging.WARNING, logger="appliance.hardware.board"):
        factory = board.make_pin_factory("auto")
    assert isinstance(factory, MockFactory)
    assert any("simulated_pins" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        board.make_pin_factory("mock")  # asked for explicitly: no warning
    assert not any("simulated_pins" in r.getMessage() for r in caplog.records)
