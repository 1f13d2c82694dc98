"""The systemd watchdog of `doorward run` (appliance.runtime.Watchdog) against a real door loop
on simulated pins and a real AF_UNIX datagram socket, as systemd's NOTIFY_SOCKET would be."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory

from appliance.door import Door
from appliance.hardware.camera import ReplayCamera
from appliance.health.systemd import Notifier
from appliance.runtime import Parts, Watchdog
from tests.support.waiting import eventually


class NoFaceEngine:
    def verify(self, *a, **k):
        raise AssertionError("face step not expected")


@pytest.fixture
def door(config, db, tmp_path: Path):
    import cv2

    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), np.full((120, 160, 3), 90, np.uint8))
    d = Door(config, db, factory=MockFactory(), camera=ReplayCamera([frame]),
             face_engine=NoFaceEngine())  # fmt: skip
    d.start()
    yield d
    d.close()


def _pending(sock: socket.socket) -> list[str]:
    """Every datagram already in the socket's queue (no waiting)."""
    out = []
    while True:
        try:
            out.append(sock.recv(4096, socket.MSG_DONTWAIT).decode())
        except BlockingIOError:
            return out


def test_a_stuck_door_loop_stops_the_watchdog_pings(door: Door, tmp_path: Path) -> None:
    """Promise: while the door loop goes round, systemd hears WATCHDOG=1; when the loop thread
    is alive but stuck inside one turn, the pings stop (so WatchdogSec= restarts the door), and
    they come back once the loop turns again."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    try:
        notifier = Notifier(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2"})  # no limit
        watchdog = Watchdog(notifier, lambda: door.loop_turned_within(0.5))

        assert watchdog.turn() is True
        assert _pending(sock) == ["WATCHDOG=1"]

        stuck, inside, release = threading.Event(), threading.Event(), threading.Event()
        handle = door.controller.handle

        def handle_or_hang(event):
            if stuck.is_set():
                inside.set()
                release.wait(30)  # a bug: the loop hangs here, its thread still alive
            return handle(event)

        door.controller.handle = handle_or_hang  # type: ignore[method-assign]
        stuck.set()
        assert inside.wait(5), "the door loop never reached the hang"
        eventually(lambda: not door.loop_turned_within(0.5), what="the loop turn goes stale")
        assert door.alive, "the loop thread must be stuck, not stopped"
        _pending(sock)  # a ping sent before the loop went stale
        for _ in range(3):
            assert watchdog.turn() is False
        assert _pending(sock) == [], "a stuck loop must not ping the watchdog"
        assert watchdog.missed == 3

        stuck.clear()
        release.set()
        eventually(lambda: door.loop_turned_within(0.5), what="the loop turns again")
        assert watchdog.turn() is True
        assert _pending(sock) == ["WATCHDOG=1"]
    finally:
        sock.close()


def test_parts_stop_newest_first_and_a_failing_part_does_not_stop_the_rest() -> None:
    """Promise: `doorward run` stops what it started in reverse order (the door, started
    first, stops last), and one part failing to stop does not leave the others running."""
    stopped: list[str] = []

    class Part:
        def __init__(self, name: str, fail: bool = False) -> None:
            self.name, self.fail = name, fail

        def stop(self) -> None:
            stopped.append(self.name)
            if self.fail:
                raise RuntimeError(f"{self.name} would not stop")

    parts = Parts()
    for name in ("door", "sync", "dispatcher", "admin"):
        parts.add(name, Part(name, fail=name == "dispatcher"))
    assert parts.stop_all() == ["dispatcher"]
    assert stopped == ["admin", "dispatcher", "sync", "door"]
    assert parts.names == []
