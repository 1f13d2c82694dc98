"""Small fault doubles for tests/faults: an SMTP server that can hang after DATA, a TCP
listener that accepts and never answers, a tmpfs of a few MiB, a door with one user."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tests.ci_gate import require


class FakeSmtp:
    """A minimal SMTP server on 127.0.0.1. `hang_after_data=True`: it takes the message after
    DATA and then never answers (a stuck relay), so the client cannot tell it arrived."""

    def __init__(self, *, hang_after_data: bool = False) -> None:
        self.hang_after_data = hang_after_data
        self.messages: list[bytes] = []
        self.connections = 0
        self.received = threading.Condition()
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fake-smtp")
        self._clients: list[socket.socket] = []

    def start(self) -> FakeSmtp:
        self._thread.start()
        return self

    @property
    def accepted(self) -> int:
        """Connections taken so far (each then waits for a byte that never comes)."""
        return len(self._held)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self._clients:
            with contextlib.suppress(OSError):
                c.close()
        self._sock.close()

    def wait_for(self, n: int, timeout: float) -> bool:
        """Block until `n` messages arrived (or the timeout); True if they did."""
        with self.received:
            return self.received.wait_for(lambda: len(self.messages) >= n, timeout)

    def subjects(self) -> list[str]:
        import email

        return [str(email.message_from_bytes(m)["Subject"]) for m in list(self.messages)]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._clients.append(conn)
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        f = conn.makefile("rwb")

        def reply(line: str) -> None:
            f.write(line.encode() + b"\r\n")
            f.flush()

        try:
            reply("220 fake ESMTP")
            while not self._stop.is_set():
                line = f.readline()
                if not line:
                    return
                verb = line.strip().split(b" ")[0].upper()
                if verb in (b"EHLO", b"HELO"):
                    reply("250 fake")
                elif verb == b"DATA":
                    reply("354 go ahead")
                    body = []
                    while (chunk := f.readline()) not in (b".\r\n", b""):
                        body.append(chunk)
                    with self.received:
                        self.messages.append(b"".join(body))
                        self.received.notify_all()
                    if self.hang_after_data:
                        self._stop.wait()  # never answer: the client times out
                        return
                    reply("250 queued")
                elif verb == b"QUIT":
                    reply("221 bye")
                    return
                else:  # MAIL, RCPT, NOOP, RSET
                    reply("250 ok")
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                f.close()
                conn.close()


class BlackHole:
    """A TCP listener that accepts connections and never sends a byte."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._serve, daemon=True, name="black-hole")

    def start(self) -> BlackHole:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)

    @property
    def accepted(self) -> int:
        """Connections taken so far (each then waits for a byte that never comes)."""
        return len(self._held)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self._held:
            c.close()
        self._sock.close()


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "4m") -> Iterator[Path]:
    """A real tmpfs of `size` mounted at `where` (root only; CI runs as root and may not skip)."""
    where.mkdir(parents=True, exist_ok=True)
    require(os.geteuid() == 0, "mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    require(done.returncode == 0, f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> int:
    """Write zeros to `path` until the filesystem is full to the last byte; bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as fh:
        for size in (1 << 16, 4096, 512, 1):
            block = b"\0" * size
            while True:
                try:
                    n += fh.write(block)
                except OSError:
                    break
    return n


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class MatchEngine:
    """A face engine that always matches (the face step is not what these tests are about)."""

    class _Decision:
        matched = True
        distance = 0.3
        reason = "match"
        frame = None
        frames_seen = 1
        ms = 1.0

    def verify(self, *a: Any, **k: Any) -> Any:
        return self._Decision()


def frame_camera(tmp_path: Path) -> Any:
    import cv2

    from appliance.hardware.camera import ReplayCamera

    p = tmp_path / "frame.png"
    cv2.imwrite(str(p), np.full((120, 160, 3), 90, np.uint8))
    return ReplayCamera([p])


def add_user(db: Any, hasher: Any, number: int, pin: str, duress: str | None = None) -> int:
    from appliance.store.models import User

    with db.session() as s:
        u = User(
            number=number,
            name=f"user {number}",
            pin_hash=hasher.hash(pin),
            duress_pin_hash=hasher.hash(duress) if duress else None,
        )
        s.add(u)
        s.flush()
        return u.id


def make_config(data_dir: Path, **sections: dict[str, Any]) -> Any:
    from appliance.config import Config

    data: dict[str, Any] = {
        "device": {"data_dir": str(data_dir)},
        "hardware": {"pin_factory": "mock"},
    }
    for k, v in sections.items():
        data.setdefault(k, {}).update(v)
    return Config.convert(data)


def rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


class DummyCamera:
    """A camera that starts and stops but has no frame (snapshots are simply missing)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...

    def read(self) -> Any:
        raise RuntimeError("no frame in this test")
