"""Owns the door's devices built from config: pin factory, keypad, relay, inputs, feedback."""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gpiozero import LED as StatusLed
from gpiozero import Buzzer, DigitalInputDevice, MotionSensor
from gpiozero.pins import Factory

from appliance.config import HardwareConfig
from appliance.core import Feedback

from .keypad import Keypad
from .relay import LockRelay

log = logging.getLogger(__name__)


class HardwareError(RuntimeError):
    """A device could not be set up; the message names the device and pin."""


MODEL_FILES = ("/proc/device-tree/model", "/sys/firmware/devicetree/base/model")
GPIO_DEVICES = ("/dev/gpiochip0", "/dev/gpiomem", "/dev/gpiomem0")


def is_raspberry_pi() -> bool:
    for path in MODEL_FILES:
        try:
            with open(path, encoding="ascii", errors="replace") as fh:
                if "raspberry pi" in fh.read().lower():
                    return True
        except OSError:
            continue
    return False


def door_like(environ: Mapping[str, str] | None = None) -> str | None:
    """Why this process looks like a real door (so simulated pins would be a silent failure):
    started by systemd, or an ARM board with GPIO devices. None on a developer machine."""
    env = os.environ if environ is None else environ
    if env.get("INVOCATION_ID") or env.get("NOTIFY_SOCKET"):
        return "it runs under systemd"
    if platform.machine().lower().startswith(("aarch64", "arm")):
        found = [d for d in GPIO_DEVICES if os.path.exists(d)]
        if found:
            return f"this ARM board has {found[0]}"
    return None


def mock_factory() -> Factory:
    """Simulated pins (gpiozero MockFactory) whose state history is bounded."""
    from .simulator import bounded_mock_factory

    return bounded_mock_factory()


def make_pin_factory(kind: str) -> Factory:
    """The pin factory for config `hardware.pin_factory` ("auto": real on a Pi, mock elsewhere)."""
    if kind == "auto":
        env = os.environ.get("GPIOZERO_PIN_FACTORY")
        kind = env if env else ("lgpio" if is_raspberry_pi() else "mock")
        if kind == "mock" and not env:
            # On a real door this is a lock that never opens and a keypad that never answers:
            # refuse where it looks like one; elsewhere say so loudly, and how to choose.
            why = door_like()
            if why is not None:
                raise HardwareError(
                    'hardware.pin_factory = "auto" found no Raspberry Pi model in '
                    f"{MODEL_FILES[0]}, but {why}: refusing to fall back to simulated pins "
                    '(a lock that never opens). Set hardware.pin_factory = "lgpio" on a Pi, '
                    'or "mock" for simulated pins'
                )
            log.warning(
                "event=simulated_pins reason=not_a_raspberry_pi model_file=/proc/device-tree/model"
                ' hint=\'set hardware.pin_factory = "lgpio" on a Pi (or "mock" to silence)\''
            )
    if kind == "mock":
        return mock_factory()
    try:
        if kind == "lgpio":
            from gpiozero.pins.lgpio import LGPIOFactory

            return LGPIOFactory()
        if kind == "rpigpio":
            from gpiozero.pins.rpigpio import RPiGPIOFactory

            return RPiGPIOFactory()
        if kind == "native":
            from gpiozero.pins.native import NativeFactory

            return NativeFactory()
    except Exception as exc:
        raise HardwareError(f"hardware.pin_factory={kind!r} cannot start: {exc}") from exc
    raise HardwareError(f"hardware.pin_factory: unknown pin factory {kind!r}")


@dataclass
class InputCallbacks:
    motion: Callable[[], None]
    door_opened: Callable[[], None]
    door_closed: Callable[[], None]
    exit_pressed: Callable[[], None]
    tamper: Callable[[], None]
    key: Callable[[str], None]
    doorbell: Callable[[], None] | None = None
    fire: Callable[[bool], None] | None = None  # the fire input changed (active or not)


class Board:
    """Every GPIO device of the door. The relay is built (and driven locked) first."""

    def __init__(
        self,
        config: HardwareConfig,
        factory: Factory,
        clock: Callable[[], float],
    ) -> None:
        pins = config.pins
        self.factory = factory
        self.config = config
        # 1. the lock, before anything else can fail
        try:
            self.relay = LockRelay(
                pins.relay, active_high=pins.relay_active_high, pin_factory=factory, clock=clock
            )
        except Exception as exc:
            raise HardwareError(f"relay on BCM {pins.relay}: {exc}") from exc
        self._devices: list = []
        try:
            bounce = config.debounce_ms / 1000 or None
            self.keypad = self._add(
                "keypad",
                lambda: Keypad(
                    pins.keypad_rows,
                    pins.keypad_cols,
                    layout=config.keypad_layout,
                    debounce_ms=config.debounce_ms,
                    pin_factory=factory,
                ),
            )
            self.pir = self._add(
                f"PIR on BCM {pins.pir}",
                lambda: MotionSensor(pins.pir, pull_up=False, queue_len=1, pin_factory=factory),
            )
            self.door = self._add(
                f"door contact on BCM {pins.door_contact}",
                lambda: DigitalInputDevice(
                    pins.door_contact, pull_up=True, bounce_time=bounce, pin_factory=factory
                ),
            )
            self.exit_button = self._add(
                f"exit button on BCM {pins.exit_button}",
                lambda: DigitalInputDevice(
                    pins.exit_button, pull_up=True, bounce_time=bounce, pin_factory=factory
                ),
            )
            self.tamper = self._add(
                f"tamper on BCM {pins.tamper}",
                lambda: DigitalInputDevice(
                    pins.tamper, pull_up=True, bounce_time=bounce, pin_factory=factory
                ),
            )
            self.led = self._add(
                f"status LED on BCM {pins.status_led}",
                lambda: StatusLed(pins.status_led, pin_factory=factory),
            )
            self.buzzer = self._add(
                f"buzzer on BCM {pins.buzzer}", lambda: Buzzer(pins.buzzer, pin_factory=factory)
            )
            # the doorbell push-button (NO, between pin and GND; pressed = low), when wired
            self.doorbell: DigitalInputDevice | None = None
            bell = pins.doorbell
            if bell is not None:
                self.doorbell = self._add(
                    f"doorbell on BCM {bell}",
                    lambda: DigitalInputDevice(
                        bell, pull_up=True, bounce_time=bounce, pin_factory=factory
                    ),
                )
            self.fire: DigitalInputDevice | None = None
            if pins.fire_input is not None:
                fire_pin = pins.fire_input
                self.fire = self._add(
                    f"fire input on BCM {fire_pin}",
                    lambda: DigitalInputDevice(
                        fire_pin, pull_up=True, bounce_time=bounce, pin_factory=factory
                    ),
                )
        except Exception:
            self.close()
            raise

    def _add(self, what: str, build: Callable[[], object]):
        try:
            dev = build()
        except Exception as exc:
            raise HardwareError(f"{what}: {exc}") from exc
        self._devices.append(dev)
        return dev

    # ---- input polarity -------------------------------------------------------------------
    # pull_up=True makes "active" mean the pin reads low.
    @property
    def door_is_open(self) -> bool:
        closed_low = self.config.door_contact_closed_when == "low"
        return not self.door.is_active if closed_low else self.door.is_active

    @property
    def tamper_alarm(self) -> bool:
        alarm_high = self.config.tamper_alarm_when == "high"
        return not self.tamper.is_active if alarm_high else self.tamper.is_active

    @property
    def fire_alarm(self) -> bool:
        """The fire input is at its active level (False without a fire input)."""
        if self.fire is None:
            return False
        active_high = self.config.fire_active_when == "high"
        # pull_up=True: is_active means the pin reads low
        return not self.fire.is_active if active_high else self.fire.is_active

    def connect(self, cb: InputCallbacks) -> None:
        closed_low = self.config.door_contact_closed_when == "low"
        self.pir.when_motion = lambda: cb.motion()
        if closed_low:
            self.door.when_deactivated = lambda: cb.door_opened()
            self.door.when_activated = lambda: cb.door_closed()
        else:
            self.door.when_activated = lambda: cb.door_opened()
            self.door.when_deactivated = lambda: cb.door_closed()
        self.exit_button.when_activated = lambda: cb.exit_pressed()
        if self.config.tamper_alarm_when == "high":
            self.tamper.when_deactivated = lambda: cb.tamper()
        else:
            self.tamper.when_activated = lambda: cb.tamper()
        self.keypad.when_key = cb.key
        if self.doorbell is not None and cb.doorbell is not None:
            ring = cb.doorbell
            self.doorbell.when_activated = lambda: ring()
        if self.fire is not None and cb.fire is not None:
            fire = cb.fire
            on_low, on_high = (lambda: fire(False)), (lambda: fire(True))
            if self.config.fire_active_when == "high":  # active = not low = deactivated
                self.fire.when_deactivated, self.fire.when_activated = on_high, on_low
            else:
                self.fire.when_activated, self.fire.when_deactivated = on_high, on_low

    # ---- feedback -------------------------------------------------------------------------
    def signal(self, feedback: Feedback) -> None:
        try:
            match feedback:
                case Feedback.KEY:
                    self.buzzer.blink(on_time=0.03, off_time=0.01, n=1)
                case Feedback.GRANTED:
                    self.led.blink(on_time=0.2, off_time=0.1, n=5)
                    self.buzzer.blink(on_time=0.3, off_time=0.1, n=1)
                case Feedback.DENIED | Feedback.LOCKED_OUT:
                    self.led.off()
                    self.buzzer.blink(on_time=0.1, off_time=0.1, n=3)
                case Feedback.WORKING | Feedback.WAKE:
                    self.led.blink(on_time=0.1, off_time=0.1, n=10)
                case Feedback.CLEARED:
                    self.buzzer.blink(on_time=0.05, off_time=0.05, n=2)
        except Exception:  # feedback is never worth failing the door over
            log.exception("event=feedback_failed kind=%s", feedback.value)

    def close(self) -> None:
        self.relay.close()  # locked first, whatever else happens
        for dev in reversed(self._devices):
            try:
                dev.close()
            except Exception:
                log.exception("event=device_close_failed device=%r", dev)
        self._devices.clear()
