"""Owns the 4x4 matrix keypad: row outputs scanned against pulled-up column inputs, debounced."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from gpiozero import CompositeDevice, DigitalInputDevice, DigitalOutputDevice
from gpiozero.pins import Factory

log = logging.getLogger(__name__)

DEFAULT_LAYOUT = ("123A", "456B", "789C", "*0#D")


class Keypad(CompositeDevice):
    """A matrix keypad: drive one row low at a time and read which column follows it.

    A key is reported once when it has been seen in `stable_scans` consecutive scans, and again
    only after it has been seen released as long. Two keys at once are ignored (ghosting).
    """

    def __init__(
        self,
        rows: Sequence[int],
        cols: Sequence[int],
        *,
        layout: Sequence[str] = DEFAULT_LAYOUT,
        debounce_ms: int = 30,
        scan_interval_ms: int = 10,
        pin_factory: Factory | None = None,
    ) -> None:
        if len(layout) != len(rows) or any(len(r) != len(cols) for r in layout):
            raise ValueError(
                f"keypad layout is {len(layout)}x{len(layout[0]) if layout else 0} "
                f"but pins give {len(rows)} rows x {len(cols)} columns"
            )
        row_devs = [
            DigitalOutputDevice(p, active_high=False, initial_value=False, pin_factory=pin_factory)
            for p in rows
        ]
        col_devs = [DigitalInputDevice(p, pull_up=True, pin_factory=pin_factory) for p in cols]
        super().__init__(*row_devs, *col_devs, pin_factory=pin_factory)
        self._rows = row_devs
        self._cols = col_devs
        self._layout = [list(r) for r in layout]
        self.scan_interval = scan_interval_ms / 1000
        self.stable_scans = max(1, round(debounce_ms / max(scan_interval_ms, 1)))
        self.when_key: Callable[[str], None] | None = None
        self._candidate: str | None = None
        self._seen = 0
        self._reported: str | None = None
        self._released = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def read_matrix(self) -> list[str]:
        """Every key that reads pressed right now (one raw scan, no debounce)."""
        pressed = []
        for r, row in enumerate(self._rows):
            row.on()
            try:
                for c, col in enumerate(self._cols):
                    if col.is_active:
                        pressed.append(self._layout[r][c])
            finally:
                row.off()
        return pressed

    def scan(self) -> str | None:
        """One scan plus debounce; returns (and reports to when_key) a newly pressed key."""
        with self._lock:
            pressed = self.read_matrix()
            key = pressed[0] if len(pressed) == 1 else None
            if key is None:
                self._candidate, self._seen = None, 0
                if self._reported is not None:
                    self._released += 1
                    if self._released >= self.stable_scans:
                        self._reported, self._released = None, 0
                return None
            self._released = 0
            if key != self._candidate:
                self._candidate, self._seen = key, 0
            self._seen += 1
            if self._seen >= self.stable_scans and self._reported is None:
                self._reported = key
                callback = self.when_key
            else:
                return None
        if callback is not None:
            callback(key)
        return key

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="keypad", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.scan_interval):
            try:
                self.scan()
            except Exception:
                log.exception("event=keypad_scan_failed")

    def close(self) -> None:
        stop = getattr(self, "_stop", None)  # close() also runs from __del__ of a failed init
        if stop is not None:
            stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1)
        self._thread = None
        super().close()
