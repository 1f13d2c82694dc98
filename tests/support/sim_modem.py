"""Owns a GSM modem simulator on a pty: speaks text-mode SMS AT commands for tests and demos."""

from __future__ import annotations

import contextlib
import os
import re
import select
import threading
import tty
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["ok", "cms_error", "no_network", "no_signal", "no_answer", "pin"]


@dataclass
class SentSms:
    number: str
    text: str
    ref: int


@dataclass
class SimModem:
    """A modem behind a pseudo-terminal: open `port` with pyserial like a real /dev/ttyUSB0.

    mode: ok | cms_error (every +CMGS answers +CMS ERROR: cms_code) | no_network (+CREG: 0,0)
    | no_signal (+CSQ: 99,99) | no_answer (reads, never replies) | pin (needs AT+CPIN="pin").
    """

    mode: Mode = "ok"
    cms_code: int = 500
    pin: str = "1234"
    echo: bool = True
    sent: list[SentSms] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._ref = 0
        self._pin_ok = False
        self._thread = threading.Thread(target=self._run, name="sim-modem", daemon=True)
        self._thread.start()

    # ---- wire ----------------------------------------------------------------------------
    def _reply(self, *lines: str) -> None:
        if self.mode == "no_answer":
            return
        os.write(self._master, b"".join(f"\r\n{line}\r\n".encode() for line in lines))

    def _run(self) -> None:
        buf = b""
        sms_to: str | None = None
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 1024)
            except OSError:
                return
            buf += chunk
            while True:
                if sms_to is not None:
                    if b"\x1a" not in buf:
                        break
                    text, _, buf = buf.partition(b"\x1a")
                    if self.echo and self.mode != "no_answer":
                        os.write(self._master, text)
                    self._finish_sms(sms_to, text.decode("ascii", "replace"))
                    sms_to = None
                    continue
                if b"\r" not in buf:
                    break
                raw, _, buf = buf.partition(b"\r")
                line = raw.decode("ascii", "replace").strip()
                if not line:
                    continue
                self.commands.append(line)
                if self.echo and self.mode != "no_answer":
                    os.write(self._master, raw + b"\r")
                sms_to = self._command(line)

    def _command(self, line: str) -> str | None:
        up = line.upper()
        if up == "ATE0":
            self.echo = False
            self._reply("OK")
        elif up in ("AT", "ATE1", "AT+CMGF=1"):
            self.echo = self.echo or up == "ATE1"
            self._reply("OK")
        elif up == "AT+CPIN?":
            ready = self.mode != "pin" or self._pin_ok
            self._reply("+CPIN: READY" if ready else "+CPIN: SIM PIN", "OK")
        elif up.startswith("AT+CPIN="):
            given = line.split("=", 1)[1].strip('"')
            if given == self.pin:
                self._pin_ok = True
                self._reply("OK")
            else:
                self._reply("+CME ERROR: 16")
        elif up == "AT+CREG?":
            self._reply("+CREG: 0,0" if self.mode == "no_network" else "+CREG: 0,1", "OK")
        elif up == "AT+CSQ":
            self._reply("+CSQ: 99,99" if self.mode == "no_signal" else "+CSQ: 21,0", "OK")
        elif m := re.fullmatch(r'AT\+CMGS="([^"]+)"', line, flags=re.IGNORECASE):
            if self.mode == "pin" and not self._pin_ok:
                self._reply("+CMS ERROR: 311")
                return None
            if self.mode != "no_answer":
                os.write(self._master, b"\r\n> ")
            return m.group(1)
        else:
            self._reply("ERROR")
        return None

    def _finish_sms(self, number: str, text: str) -> None:
        if self.mode == "cms_error":
            self._reply(f"+CMS ERROR: {self.cms_code}")
            return
        if self.mode == "no_answer":
            return
        self._ref += 1
        self.sent.append(SentSms(number, text, self._ref))
        self._reply(f"+CMGS: {self._ref}", "OK")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> SimModem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
