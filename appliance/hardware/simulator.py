"""Owns simulated wiring for MockFactory: a pressable keypad matrix and the door's switches."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence

from gpiozero.pins.mock import MockFactory, MockPin, PinState

from appliance.config import HardwareConfig

from .keypad import DEFAULT_LAYOUT, Keypad

MOCK_PIN_HISTORY = 1000  # state changes a simulated pin remembers


class BoundedMockPin(MockPin):
    """A MockPin that remembers only its last MOCK_PIN_HISTORY state changes.

    gpiozero's MockPin appends every change to `states` for tests to assert on. The keypad
    scan toggles its row pins all the time, so on simulated pins `doorward run` grew by
    ~80 KB/s (~290 MB an hour) from that history alone.
    """

    def clear_states(self) -> None:
        self._last_change = time.monotonic()
        self.states = deque([PinState(0.0, self._state)], maxlen=MOCK_PIN_HISTORY)


def bounded_mock_factory() -> MockFactory:
    """MockFactory whose pins are BoundedMockPin (what the door uses off the Pi)."""
    return MockFactory(pin_class=BoundedMockPin)


class _RowPin(BoundedMockPin):
    """A keypad row: whenever the scanner drives it, the pressed keys' columns follow."""

    sim: KeypadSimulator | None = None

    def _change_state(self, value: bool) -> bool:
        changed = super()._change_state(value)
        if self.sim is not None:
            self.sim.update()
        return changed


class KeypadSimulator:
    """Presses keys on a MockFactory keypad at the pin level (rows and columns)."""

    def __init__(
        self,
        factory: MockFactory,
        rows: Sequence[int],
        cols: Sequence[int],
        layout: Sequence[str] = DEFAULT_LAYOUT,
    ) -> None:
        self._rows = []
        for r in rows:
            pin = factory.pin(r, pin_class=_RowPin)
            if not isinstance(pin, _RowPin):
                raise RuntimeError(f"BCM {r} was claimed before the keypad simulator")
            pin.sim = self
            self._rows.append(pin)
        self._cols = [factory.pin(c) for c in cols]
        self._where = {k: (r, c) for r, line in enumerate(layout) for c, k in enumerate(line)}
        self._pressed: set[tuple[int, int]] = set()
        self._mutex = threading.RLock()

    def update(self) -> None:
        with self._mutex:
            for c, col in enumerate(self._cols):
                low = any(rc[1] == c and not self._rows[rc[0]].state for rc in self._pressed)
                if low:
                    col.drive_low()
                else:
                    col.drive_high()

    def check_keys(self, keys: str) -> None:
        """Raise ValueError naming the first of `keys` that this keypad does not have."""
        for key in keys:
            if key not in self._where:
                shown = "".join(sorted(self._where))
                raise ValueError(f"no key {key!r} on this keypad (keys: {shown})")

    def hold(self, key: str) -> None:
        if key not in self._where:
            raise ValueError(f"no key {key!r} on this keypad")
        with self._mutex:
            self._pressed.add(self._where[key])
            self.update()

    def release(self, key: str | None = None) -> None:
        with self._mutex:
            if key is None:
                self._pressed.clear()
            else:
                self._pressed.discard(self._where[key])
            self.update()

    def tap(self, key: str, keypad: Keypad, *, timeout: float = 5.0) -> None:
        """Press and release `key` so that `keypad` reports it exactly once.

        With the keypad's scan thread running this takes real time; without it the scans are
        driven here, which makes scripted visits fast and deterministic. `timeout` only bounds
        a failure: the key is released as soon as the scanner reported it (on a loaded machine
        a 1 s bound let keys go unreported, and codes arrived with keys missing).
        """
        if keypad.running:
            # the previous key must have been seen released first: a repeated key ("55")
            # pressed while the scanner still holds the last report is never reported
            deadline = time.monotonic() + timeout
            while keypad._reported is not None and time.monotonic() < deadline:
                time.sleep(keypad.scan_interval)
        self.hold(key)
        try:
            if keypad.running:
                deadline = time.monotonic() + timeout
                time.sleep(keypad.scan_interval * (keypad.stable_scans + 2))
                while keypad._reported != key and time.monotonic() < deadline:
                    time.sleep(keypad.scan_interval)
            else:
                for _ in range(keypad.stable_scans):
                    keypad.scan()
        finally:
            self.release(key)
        if keypad.running:
            time.sleep(keypad.scan_interval * (keypad.stable_scans + 2))
        else:
            for _ in range(keypad.stable_scans):
                keypad.scan()


class DoorSimulator:
    """The door's switches on MockFactory pins: contact, exit button, tamper, PIR."""

    def __init__(self, factory: MockFactory, config: HardwareConfig) -> None:
        p = config.pins
        self.config = config
        self._door = factory.pin(p.door_contact)
        self._exit = factory.pin(p.exit_button)
        self._tamper = factory.pin(p.tamper)
        self._pir = factory.pin(p.pir)
        bell = p.doorbell
        self._doorbell = factory.pin(bell) if bell is not None else None
        self._fire = factory.pin(p.fire_input) if p.fire_input is not None else None
        self.keypad = KeypadSimulator(factory, p.keypad_rows, p.keypad_cols, config.keypad_layout)
        self._gap = max(config.debounce_ms / 1000 * 1.5, 0.002)

    def set_resting(self) -> None:
        """Door closed, no tamper, no motion, button up: call after the Board is built
        (building an input with a pull-up resets its mock pin to the pull level)."""
        self._drive(
            self._door, closed=True, closed_low=self.config.door_contact_closed_when == "low"
        )
        self._exit.drive_high()
        if self._doorbell is not None:
            self._doorbell.drive_high()
        # tamper loop intact: the opposite of the alarm level
        if self.config.tamper_alarm_when == "high":
            self._tamper.drive_low()
        else:
            self._tamper.drive_high()
        self._pir.drive_low()
        if self._fire is not None:
            self._set_fire(False)

    def _set_fire(self, active: bool) -> None:
        if self._fire is None:
            raise RuntimeError("no fire input configured (hardware.pins.fire_input)")
        if active == (self.config.fire_active_when == "high"):
            self._fire.drive_high()
        else:
            self._fire.drive_low()

    def fire_alarm(self, active: bool = True) -> None:
        """Drive the fire-alarm input to its active (or quiet) level."""
        self._set_fire(active)
        self._settle()

    @staticmethod
    def _drive(pin: MockPin, *, closed: bool, closed_low: bool) -> None:
        if closed == closed_low:
            pin.drive_low()
        else:
            pin.drive_high()

    def _settle(self) -> None:
        time.sleep(self._gap)

    def open_door(self) -> None:
        self._drive(
            self._door, closed=False, closed_low=self.config.door_contact_closed_when == "low"
        )
        self._settle()

    def close_door(self) -> None:
        self._drive(
            self._door, closed=True, closed_low=self.config.door_contact_closed_when == "low"
        )
        self._settle()

    def press_exit(self) -> None:
        self._exit.drive_low()
        self._settle()
        self._exit.drive_high()
        self._settle()

    @property
    def has_doorbell(self) -> bool:
        return self._doorbell is not None

    def press_doorbell(self) -> None:
        """Press and release the doorbell button (hardware.pins.doorbell must be set)."""
        if self._doorbell is None:
            raise RuntimeError("no doorbell wired: set hardware.pins.doorbell")
        self._doorbell.drive_low()
        self._settle()
        self._doorbell.drive_high()
        self._settle()

    def trigger_tamper(self) -> None:
        if self.config.tamper_alarm_when == "high":
            self._tamper.drive_high()
        else:
            self._tamper.drive_low()
        self._settle()

    def restore_tamper(self) -> None:
        if self.config.tamper_alarm_when == "high":
            self._tamper.drive_low()
        else:
            self._tamper.drive_high()
        self._settle()

    def motion(self, hold_s: float = 0.3) -> None:
        """A PIR pulse. Real PIR modules hold their output for seconds; MotionSensor samples."""
        self._pir.drive_high()
        time.sleep(hold_s)
        self._pir.drive_low()
