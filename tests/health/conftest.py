"""Fixtures for the health tests: configs in temp dirs, loopback servers, a pty modem."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.config import Config, parse_config
from tests.support.waiting import free_port


@pytest.fixture()
def make_config(tmp_path: Path):
    def build(**sections: Any) -> Config:
        data: dict[str, Any] = {"device": {"data_dir": str(tmp_path / "data")}}
        for key, value in sections.items():
            data.setdefault(key, {}).update(value)
        return parse_config(data, source="test")

    return build


@pytest.fixture()
def tcp_listener() -> Iterator[tuple[str, int]]:
    """A loopback TCP server that accepts and closes connections (a reachable host:port)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                conn.close()
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield "127.0.0.1", srv.getsockname()[1]
    stop.set()
    t.join(2)
    srv.close()


@pytest.fixture()
def closed_port() -> int:
    return free_port()  # nothing listens there now


@pytest.fixture()
def smtp_server() -> Iterator[tuple[str, int]]:
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield "127.0.0.1", port
    finally:
        controller.stop()


class PtyModem:
    """A minimal AT modem on a pseudo-terminal: answers AT and AT+CSQ."""

    def __init__(self, csq: str = "18,99", silent: bool = False) -> None:
        import tty

        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave
        self.csq = csq
        self.silent = silent
        self.commands: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import select

        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                buf += os.read(self.master, 256)
            except OSError:
                return
            while b"\r" in buf:
                line, buf = buf.split(b"\r", 1)
                cmd = line.strip().decode("ascii", "replace")
                if not cmd:
                    continue
                self.commands.append(cmd)
                if self.silent:
                    continue
                if cmd == "AT":
                    reply = "\r\nOK\r\n"
                elif cmd == "AT+CSQ":
                    reply = f"\r\n+CSQ: {self.csq}\r\n\r\nOK\r\n"
                else:
                    reply = "\r\nERROR\r\n"
                os.write(self.master, reply.encode())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        os.close(self.master)
        os.close(self._slave)


@pytest.fixture()
def pty_modem() -> Iterator[type[PtyModem]]:
    made: list[PtyModem] = []

    def make(**kw: Any) -> PtyModem:
        m = PtyModem(**kw)
        made.append(m)
        return m

    yield make  # type: ignore[misc]
    for m in made:
        m.close()
