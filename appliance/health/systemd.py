"""Owns the systemd notify protocol (READY, WATCHDOG, STOPPING, STATUS) without libsystemd."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

ENV_SOCKET = "NOTIFY_SOCKET"
ENV_WATCHDOG_USEC = "WATCHDOG_USEC"
ENV_WATCHDOG_PID = "WATCHDOG_PID"


def _address(raw: str) -> str | bytes:
    """The socket address for $NOTIFY_SOCKET; a leading '@' means Linux's abstract namespace."""
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode()
    return raw


def sd_notify(state: str, *, env: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1\\nSTATUS=running") to systemd.

    Returns False (and does nothing) when not started by systemd with Type=notify, i.e. when
    $NOTIFY_SOCKET is unset. Errors talking to the socket are logged, never raised: the door
    must not stop because systemd's socket is gone.
    """
    env = os.environ if env is None else env
    raw = env.get(ENV_SOCKET)
    if not raw:
        return False
    if not (raw.startswith("/") or raw.startswith("@")):
        log.warning("event=sd_notify_error reason=unsupported_socket socket=%s", raw)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(_address(raw))
            sock.sendall(state.encode("utf-8"))
    except OSError as exc:
        log.warning("event=sd_notify_error socket=%s error=%s", raw, exc)
        return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of $WATCHDOG_USEC, or None if no watchdog.

    Honours $WATCHDOG_PID: when it is set and is not this process, the watchdog is someone else's.
    """
    env = os.environ if env is None else env
    usec = env.get(ENV_WATCHDOG_USEC)
    if not usec:
        return None
    pid = env.get(ENV_WATCHDOG_PID)
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("event=sd_watchdog_invalid WATCHDOG_USEC=%s", usec)
        return None
    if value <= 0:
        return None
    return value / 2_000_000


class Notifier:
    """What the door loop calls: ready(), ping() each loop turn, status(), stopping().

    ping() is cheap to call every iteration: it only sends WATCHDOG=1 once per half watchdog
    period (rate-limited with a monotonic clock). If the loop stops calling ping(), systemd's
    WatchdogSec= expires and, with Restart=on-failure, the service is restarted.
    """

    def __init__(
        self, env: Mapping[str, str] | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        self._env = dict(os.environ if env is None else env)
        self._clock = clock or time.monotonic
        self.interval = watchdog_interval(self._env)
        self._last_ping: float | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self._env.get(ENV_SOCKET))

    def _send(self, state: str) -> bool:
        return sd_notify(state, env=self._env)

    def ready(self, status: str | None = None) -> bool:
        msg = "READY=1"
        if status:
            msg += f"\nSTATUS={status}"
        return self._send(msg)

    def status(self, text: str) -> bool:
        return self._send(f"STATUS={text}")

    def stopping(self, status: str | None = None) -> bool:
        msg = "STOPPING=1"
        if status:
            msg += f"\nSTATUS={status}"
        return self._send(msg)

    def ping(self, *, force: bool = False) -> bool:
        """Send WATCHDOG=1 if due (or `force`). Returns True when a ping was sent."""
        if self.interval is None and not force:
            return False
        now = self._clock()
        with self._lock:
            if (
                not force
                and self._last_ping is not None
                and self.interval is not None
                and now - self._last_ping < self.interval
            ):
                return False
            self._last_ping = now
        return self._send("WATCHDOG=1")

    def watchdog_trigger(self) -> bool:
        """Ask systemd to treat the watchdog as expired now (WATCHDOG=trigger)."""
        return self._send("WATCHDOG=trigger")
