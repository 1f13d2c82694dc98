"""[hardware], [hardware.pins], [camera]: the wiring and the camera."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from msgspec import Meta, field

from appliance.config.base import BcmPin, Section

# the keys a 4x4 keypad has (the same as the state machine's, appliance/core/machine.py KEYS)
KEYPAD_KEYS = "0123456789*#ABCD"


class PinsConfig(Section, frozen=True, kw_only=True):
    """BCM pin numbers. Defaults follow the wiring table in the README."""

    keypad_rows: Annotated[list[BcmPin], Meta(min_length=4, max_length=4)] = field(
        default_factory=lambda: [5, 6, 13, 19]
    )
    keypad_cols: Annotated[list[BcmPin], Meta(min_length=4, max_length=4)] = field(
        default_factory=lambda: [12, 16, 20, 21]
    )
    pir: BcmPin = 4
    relay: BcmPin = 17
    relay_active_high: bool = True
    door_contact: BcmPin = 27
    exit_button: BcmPin = 22
    tamper: BcmPin = 23
    status_led: BcmPin = 24
    buzzer: BcmPin = 25
    # a doorbell push-button (NO, between pin and GND); unset = no doorbell
    doorbell: BcmPin | None = None
    # fire-alarm input (a dry contact of the fire panel); unset = no fire input
    fire_input: BcmPin | None = None

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        for name in self.__struct_fields__:
            value = getattr(self, name)
            for pin in value if isinstance(value, list) else [value]:
                if isinstance(pin, bool) or pin is None:
                    continue
                if pin in seen:
                    raise ValueError(f"BCM pin {pin} is used by both {seen[pin]} and {name}")
                seen[pin] = name


class HardwareConfig(Section, frozen=True, kw_only=True):
    # "auto": real pins on a Pi, gpiozero MockFactory elsewhere. "mock": always simulated.
    pin_factory: Literal["auto", "mock", "lgpio", "rpigpio", "native"] = "auto"
    pins: PinsConfig = PinsConfig()
    keypad_layout: Annotated[list[str], Meta(min_length=4, max_length=4)] = field(
        default_factory=lambda: ["123A", "456B", "789C", "*0#D"]
    )
    debounce_ms: Annotated[int, Meta(ge=0, le=500)] = 30
    door_contact_closed_when: Literal["low", "high"] = "low"
    tamper_alarm_when: Literal["low", "high"] = "high"
    # the fire input's level while the fire alarm is active: "high" suits a normally closed
    # contact to GND (a cut wire also releases the lock), "low" a normally open one
    fire_active_when: Literal["low", "high"] = "high"

    def __post_init__(self) -> None:
        keys = [k for row in self.keypad_layout for k in row]
        if any(len(row) != 4 for row in self.keypad_layout):
            raise ValueError(f"keypad_layout: 4 rows of 4 keys, got {self.keypad_layout!r}")
        unknown = sorted(set(keys) - set(KEYPAD_KEYS))
        if unknown:
            raise ValueError(
                f"keypad_layout: keys {''.join(unknown)!r} are not keypad keys (0-9 * # A-D)"
            )
        if len(set(keys)) != len(keys):
            raise ValueError(f"keypad_layout: a key appears twice in {self.keypad_layout!r}")


class CameraConfig(Section, frozen=True, kw_only=True):
    kind: Literal["replay", "opencv", "picamera2"] = "replay"
    # replay: image files, folders or videos, cycled in order
    sources: list[Path] = []
    device: Annotated[int, Meta(ge=0)] = 0
    # 1080p: full field of view from the binned sensor modes of the Pi cameras, and 2.25x the
    # pixels of 720p on a face for the encoder crop; detection runs on a 480 px copy, so the
    # face check costs about the same (docs/BENCHMARKS.md "Face check").
    width: Annotated[int, Meta(ge=160)] = 1920
    height: Annotated[int, Meta(ge=120)] = 1080
    fps: Annotated[float, Meta(gt=0, le=60)] = 10.0
