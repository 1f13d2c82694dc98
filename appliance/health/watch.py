"""Owns the heartbeat schedule and camera/modem loss detection (lost and restored edges)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# alert kinds the lead's dispatcher should know (AlertMessage.kind)
CAMERA_LOST = "camera_lost"
MODEM_LOST = "modem_lost"


class Heartbeat:
    """due(now) is True once per interval; the caller then records a heartbeat event.

    The lead's loop: `if hb.due(): store the event kind="heartbeat" with hb.detail()`.
    """

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        if interval_s <= 0:
            raise ValueError(f"heartbeat interval must be > 0 s, got {interval_s}")
        self.interval_s = interval_s
        self._clock = clock
        self._started = clock()
        self._last: float | None = None
        self.count = 0

    def due(self) -> bool:
        now = self._clock()
        if self._last is not None and now - self._last < self.interval_s:
            return False
        self._last = now
        self.count += 1
        log.info("event=heartbeat n=%d uptime_s=%.0f", self.count, now - self._started)
        return True

    def detail(self) -> dict[str, float | int]:
        return {"n": self.count, "uptime_s": round(self._clock() - self._started, 1)}


@dataclass(frozen=True)
class Transition:
    device: str
    state: str  # "lost" | "restored"
    failures: int
    error: str

    @property
    def alert_kind(self) -> str | None:
        return f"{self.device}_lost" if self.state == "lost" else None


class DeviceWatch:
    """Probes a device; after `lose_after` failures in a row reports "lost" once, then
    "restored" once on the next success. Probe: a callable that raises when the device is gone.
    """

    def __init__(self, device: str, probe: Callable[[], object], lose_after: int = 3) -> None:
        if lose_after < 1:
            raise ValueError("lose_after must be >= 1")
        self.device = device
        self._probe = probe
        self.lose_after = lose_after
        self.failures = 0
        self.lost = False

    def check(self) -> Transition | None:
        try:
            self._probe()
        except Exception as exc:  # any failure of the probe means "not working now"
            self.failures += 1
            if not self.lost and self.failures >= self.lose_after:
                self.lost = True
                log.warning(
                    "event=device_lost device=%s failures=%d error=%s",
                    self.device,
                    self.failures,
                    exc,
                )
                return Transition(self.device, "lost", self.failures, str(exc))
            return None
        failures, self.failures = self.failures, 0
        if self.lost:
            self.lost = False
            log.info("event=device_restored device=%s after_failures=%d", self.device, failures)
            return Transition(self.device, "restored", failures, "")
        return None


def camera_probe(camera: object) -> Callable[[], object]:
    """A probe reading one frame from a Camera port object (raises CameraError when gone)."""

    def probe() -> object:
        frame = camera.read()  # type: ignore[attr-defined]
        if getattr(frame, "ndim", 0) != 3:
            raise RuntimeError("camera returned no frame")
        return frame

    return probe


def modem_probe(port: str, baud: int = 115200, timeout_s: float = 3.0) -> Callable[[], object]:
    """A probe sending AT to the modem and requiring OK (pyserial; opened per probe)."""

    def probe() -> object:
        import serial

        from appliance.alerts.channels.gsm import port_lock

        from .doctor import _at

        with port_lock(port), serial.serial_for_url(port, baudrate=baud, timeout=0.1) as ser:
            reply = _at(ser, "AT", time.monotonic() + timeout_s)
        if "OK" not in reply:
            raise RuntimeError(f"modem answered {reply.strip()!r}")
        return reply

    return probe
