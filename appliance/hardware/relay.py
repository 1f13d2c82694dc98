"""Owns the lock relay: locked means de-energised, pulses end by themselves, failures lock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gpiozero import DigitalOutputDevice
from gpiozero.pins import Factory

log = logging.getLogger(__name__)


class LockRelay:
    """The relay that drives the lock.

    It is driven to locked (de-energised) the moment it is built, before anything else runs.
    `unlock(seconds)` energises it and arms a timer that de-energises it after `seconds` even
    if nothing else ever calls `lock()`; `close()` locks first.
    """

    def __init__(
        self,
        pin: int,
        *,
        active_high: bool = True,
        pin_factory: Factory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._device = DigitalOutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
        )
        self._device.off()
        self._clock = clock
        self._timer: threading.Timer | None = None
        self._mutex = threading.Lock()
        self._closed = False
        self.pulses: list[tuple[float, float | None]] = []  # (on_at, off_at) on the clock

    @property
    def locked(self) -> bool:
        return not self._device.value

    @property
    def pin(self) -> object:
        return self._device.pin

    def unlock(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"unlock pulse must be positive, got {seconds}")
        self._energise(seconds, pulse=True)
        log.info("event=relay_unlocked seconds=%.1f", seconds)

    def _energise(self, seconds: float, *, pulse: bool) -> bool:
        """Relay on, with a timer that locks it after `seconds` (replacing any running
        timer); a device fault drives it off and raises. True if it was off before. `pulse`:
        the timer ends an unlock pulse, else a lease."""
        with self._mutex:
            if self._closed:
                raise RuntimeError("the relay is closed: nothing may energise it")
            self._cancel_timer()
            was_on = bool(self._device.value)
            try:
                self._device.on()
            except Exception:
                self._safe_off()
                raise
            if not self.pulses or self.pulses[-1][1] is not None:
                self.pulses.append((self._clock(), None))
            self._timer = threading.Timer(seconds, self._expire, args=(not pulse,))
            self._timer.daemon = True
            self._timer.start()
        return not was_on

    def hold(self, lease_s: float) -> None:
        """Energise with no end of its own, on a lease: unless `hold` is called again within
        `lease_s`, the relay locks by itself (a stopped loop cannot leave the door unlocked).
        Replaces a running pulse's timer."""
        if lease_s <= 0:
            raise ValueError(f"hold lease must be positive, got {lease_s}")
        if self._energise(lease_s, pulse=False):
            log.info("event=relay_held lease_s=%.1f", lease_s)

    def _expire(self, lease: bool) -> None:
        """A timer's end (on its own thread): lock, unless this timer was cancelled or
        replaced after it fired and before it got the mutex. A timer that fired as the loop
        ended its pulse and started the next one (the exit button at the pulse's end) must
        not end the new pulse."""
        with self._mutex:
            if self._timer is not threading.current_thread() or self._closed:
                return
            self._timer = None
            was_on = self._off()
        if lease:
            log.error("event=relay_hold_lease_expired action=lock")
        if was_on:
            log.info("event=relay_locked")

    def lock(self) -> None:
        with self._mutex:
            if self._closed:  # locked at close, and the pin is released
                return
            self._cancel_timer()
            was_on = self._off()
        if was_on:
            log.info("event=relay_locked")

    def _off(self) -> bool:
        """Relay off (the mutex held); True if it was on."""
        was_on = bool(self._device.value)
        self._safe_off()
        if was_on and self.pulses and self.pulses[-1][1] is None:
            self.pulses[-1] = (self.pulses[-1][0], self._clock())
        return was_on

    def _safe_off(self) -> None:
        try:
            self._device.off()
        except Exception:
            log.exception("event=relay_off_failed")

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        self._timer = None

    def close(self) -> None:
        """Lock, then release the pin, in one hold of the mutex: an `unlock` from a thread that
        outlived the door's stop (a loop stuck past its join) cannot land in between and leave
        the pin driven; after close every unlock or hold is refused."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            self._cancel_timer()
            was_on = self._off()
            self._device.close()
        if was_on:
            log.info("event=relay_locked")

    def __enter__(self) -> LockRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
