"""sd_notify against a real AF_UNIX datagram socket, as systemd's NOTIFY_SOCKET would be."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from appliance.health.systemd import Notifier, sd_notify, watchdog_interval


@pytest.fixture()
def notify_socket(tmp_path: Path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield str(path), sock
    sock.close()


def _drain(sock: socket.socket, timeout: float = 0.05) -> list[str]:
    sock.settimeout(timeout)
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            return out


def test_ready_status_stopping_reach_the_socket(notify_socket):
    path, sock = notify_socket
    n = Notifier(env={"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("door loop running")
    assert sock.recv(4096).decode() == "READY=1\nSTATUS=door loop running"
    assert n.status("camera lost")
    assert sock.recv(4096).decode() == "STATUS=camera lost"
    assert n.stopping()
    assert sock.recv(4096).decode() == "STOPPING=1"


def test_abstract_namespace_socket():
    name = f"doorward-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2)
    try:
        assert sd_notify("READY=1", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_no_socket_means_no_op_and_dead_socket_is_not_fatal(tmp_path):
    assert sd_notify("READY=1", env={}) is False
    assert sd_notify("READY=1", env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False
    assert sd_notify("READY=1", env={"NOTIFY_SOCKET": "relative.sock"}) is False
    assert Notifier(env={}).ping(force=True) is False


def test_watchdog_interval_is_half_of_watchdog_usec():
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "junk"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    env = {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval(env) == 1.0
    # the watchdog belongs to another process (e.g. a shell wrapper): not ours to ping
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) is None


def test_ping_is_rate_limited_to_half_the_period(notify_socket):
    path, sock = notify_socket
    now = [100.0]
    n = Notifier(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"}, clock=lambda: now[0])
    assert n.interval == 5.0
    assert n.ping()  # first ping always goes
    assert not n.ping()  # too soon
    now[0] += 4.9
    assert not n.ping()
    now[0] += 0.2
    assert n.ping()
    assert _drain(sock) == ["WATCHDOG=1", "WATCHDOG=1"]
