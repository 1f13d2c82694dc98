"""Owns the connectivity probe: a background TCP check whose cached result never blocks."""

from __future__ import annotations

import logging
import socket
import threading

log = logging.getLogger(__name__)


class ConnectivityProbe:
    """Is the internet reachable? Checked in its own thread; `online` only reads a cached flag."""

    def __init__(self, host: str, port: int, interval_s: float, timeout_s: float = 3.0) -> None:
        self.host = host
        self.port = port
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._online: bool | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def online(self) -> bool:
        """The last result; True until the first check finished (so nothing waits for it)."""
        return self._online is not False

    def check(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout_s):
                ok = True
        except OSError:
            ok = False
        if ok != self._online:
            log.info("event=connectivity online=%s host=%s port=%d", ok, self.host, self.port)
        self._online = ok
        return ok

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alerts-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check()
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 1)
            self._thread = None


class StaticProbe:
    """A probe with a fixed answer (probing disabled, or tests)."""

    def __init__(self, online: bool = True) -> None:
        self.online = online

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass
