"""One way to wait for a condition, pick a free port and drive time in tests."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago (the OS picked it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def eventually(
    probe: Callable[[], T], timeout: float = 10.0, *, interval: float = 0.05, what: str = ""
) -> T:
    """Poll `probe` until it returns something truthy and return that; fail after `timeout`.

    This waits for an event the test cannot be told about directly (another process wrote a
    row, a server answered); it never stands in for one: the deadline only bounds a failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what or probe!r}")
        time.sleep(interval)


class FakeClock:
    """A clock the test moves by hand: `clock()` reads it, `clock.t += 5` or `advance(5)`.

    With `step`, every read first moves it on by `step` seconds (a loop that reads the clock
    once per frame sees time pass exactly as fast as it reads)."""

    def __init__(self, t: float = 1000.0, *, step: float = 0.0) -> None:
        self.t = t
        self.step = step

    def __call__(self) -> float:
        self.t += self.step
        return self.t

    def advance(self, seconds: float) -> float:
        self.t += seconds
        return self.t
