"""The pieces of `doorward run`'s composition root that are worth testing on their own:
parts started in a fixed order and stopped in reverse, and the systemd watchdog loop."""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

log = logging.getLogger("doorward")

P = TypeVar("P")


class Stoppable(Protocol):
    def stop(self) -> Any: ...


class Parts:
    """What `doorward run` started, in order; stop_all() stops them newest first.

    A part that fails to stop is logged and the others are still stopped: the door (started
    first) is always stopped last, after the parts that feed it."""

    def __init__(self) -> None:
        self._parts: list[tuple[str, Stoppable]] = []

    def add(self, name: str, part: P) -> P:
        """Register an already started part (returned, for chaining)."""
        self._parts.append((name, part))  # type: ignore[arg-type]
        return part

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._parts]

    def stop_all(
        self,
        *,
        budget_s: float | None = None,
        part_s: float | None = None,
        skip: object = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> list[str]:
        """Stop every part in reverse order (but `skip`); returns the names that failed.

        With a budget, a part whose stop() takes `timeout` is given at most `part_s` and never
        more than is left of `budget_s` (at least 0.5 s): a part stuck on a dead server (sync,
        SMTP) is left to its daemon thread instead of holding up the exit."""
        deadline = None if budget_s is None else clock() + budget_s
        failed = []
        while self._parts:
            name, part = self._parts.pop()
            if part is skip:
                continue
            stop: Any = part.stop
            try:
                if deadline is not None and "timeout" in inspect.signature(stop).parameters:
                    left = max(0.5, deadline - clock())
                    stop(timeout=min(part_s or left, left))
                else:
                    stop()
            except Exception:
                log.exception("event=stop_failed part=%s", name)
                failed.append(name)
        return failed


class Notifier(Protocol):
    def ready(self, status: str | None = None) -> bool: ...

    def ping(self, *, force: bool = False) -> bool: ...

    def stopping(self, status: str | None = None) -> bool: ...


class Watchdog:
    """Pings systemd's watchdog only while `healthy()` says the door loop goes round.

    A door loop that hangs (alive but stuck in one turn) makes `healthy()` false, the pings
    stop, WatchdogSec= expires and systemd restarts the door (Restart=on-failure)."""

    def __init__(
        self, notifier: Notifier, healthy: Callable[[], bool], period_s: float = 1.0
    ) -> None:
        self.notifier = notifier
        self.healthy = healthy
        self.period_s = period_s
        self.missed = 0  # turns in a row without a ping because the door was not healthy

    def turn(self) -> bool:
        """One check: ping if the door is healthy. Returns whether it was healthy."""
        if self.healthy():
            self.missed = 0
            self.notifier.ping()
            return True
        self.missed += 1
        if self.missed == 1:
            log.error("event=door_loop_stuck action=watchdog_pings_stopped")
        return False

    def run(self, stop: threading.Event, status: str) -> None:
        """READY, then a turn every period until `stop` is set, then STOPPING."""
        self.notifier.ready(status)
        while not stop.wait(self.period_s):
            self.turn()
        self.notifier.stopping()
