"""Owns a GSM modem simulator on a pty: speaks text-mode SMS AT commands for tests and demos,
and receives SMS: `deliver()` stores a message (read back in PDU mode with AT+CMGR/AT+CMGL,
deleted with AT+CMGD) and, when AT+CNMI asked for it, says so with +CMTI."""

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


GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def _swap_digits(digits: str) -> str:
    if len(digits) % 2:
        digits += "F"
    return "".join(digits[i + 1] + digits[i] for i in range(0, len(digits), 2))


def _pack7(septets: list[int]) -> bytes:
    bits = 0
    for i, s in enumerate(septets):
        bits |= s << (7 * i)
    return bits.to_bytes((7 * len(septets) + 7) // 8, "little")


def deliver_pdu(sender: str, text: str, when: str = "261202010000") -> str:
    """An SMS-DELIVER PDU (hex, SMSC included) as a network would hand it to the modem.

    sender: "+<digits>" (international), "<digits>" (national) or letters (alphanumeric, as a
    spoofing service would send); text in the GSM 7-bit alphabet, else UCS2."""
    smsc = "07" + "91" + _swap_digits("447785016005")
    if sender.startswith("+") and sender[1:].isdigit():
        oa = f"{len(sender) - 1:02X}91" + _swap_digits(sender[1:])
    elif sender.isdigit():
        oa = f"{len(sender):02X}81" + _swap_digits(sender)
    else:
        packed = _pack7([GSM7.index(c) for c in sender])
        oa = f"{len(packed) * 2:02X}D0" + packed.hex().upper()
    ts = _swap_digits(when) + "00"
    if all(c in GSM7 and c != "\x1b" for c in text):
        dcs, udl, ud = "00", len(text), _pack7([GSM7.index(c) for c in text])
    else:
        body = text.encode("utf-16-be")
        dcs, udl, ud = "08", len(body), body
    return (smsc + "04" + oa + "00" + dcs + ts + f"{udl:02X}" + ud.hex()).upper()


@dataclass
class StoredSms:
    index: int
    sender: str
    text: str
    read: bool = False
    pdu: str = ""


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
    # incoming SMS stored on the SIM, by index; +CMTI only after AT+CNMI=2,1
    inbox: dict[int, StoredSms] = field(default_factory=dict)
    drop_indications: bool = False  # a modem that loses +CMTI (the message is still stored)
    indications: int = 0  # +CMTI written
    deleted: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        self.port = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._ref = 0
        self._pin_ok = False
        self._cnmi = False
        self._pdu_mode = False
        self._lock = threading.Lock()
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
        with self._lock:
            return self._command_locked(line)

    def _command_locked(self, line: str) -> str | None:
        up = line.upper()
        if up in ("AT+CMGF=0", "AT+CMGF=1"):
            self._pdu_mode = up.endswith("0")
            self._reply("OK")
        elif up.startswith("AT+CNMI="):
            fields = up.split("=", 1)[1].split(",")
            self._cnmi = len(fields) > 1 and fields[1].strip() in ("1", "2")
            self._reply("OK")
        elif m := re.fullmatch(r"AT\+CMGR=(\d+)", up):
            self._read_one(int(m.group(1)))
        elif m := re.fullmatch(r'AT\+CMGL=("?)(\w+| ?[\w ]+)\1', up):
            self._list(m.group(2))
        elif m := re.fullmatch(r"AT\+CMGD=(\d+)(?:,(\d))?", up):
            idx, flag = int(m.group(1)), int(m.group(2) or 0)
            gone = list(self.inbox) if flag == 4 else [idx]
            for i in gone:
                if self.inbox.pop(i, None) is not None:
                    self.deleted.append(i)
            self._reply("OK")
        elif up == "ATE0":
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

    # ---- incoming SMS --------------------------------------------------------------------
    def deliver(self, sender: str, text: str, *, store: bool = True, indicate: bool = True) -> int:
        """A message arrives from the network: stored at the next free index (unless `store`
        is False: a modem that announces a message it then loses), +CMTI when indications
        are on (and not dropped). Returns the index."""
        with self._lock:
            index = next(i for i in range(1, 1000) if i not in self.inbox)
            if store:
                self.inbox[index] = StoredSms(index, sender, text, pdu=deliver_pdu(sender, text))
            if indicate and self._cnmi and not self.drop_indications and self.mode != "no_answer":
                self.indications += 1
                os.write(self._master, f'\r\n+CMTI: "SM",{index}\r\n'.encode())
        return index

    def _read_one(self, index: int) -> None:
        sms = self.inbox.get(index)
        if not self._pdu_mode:
            self._reply("ERROR")  # this simulator reads messages in PDU mode only
        elif sms is None:
            self._reply("+CMS ERROR: 321")  # invalid memory index
        else:
            stat = 1 if sms.read else 0
            sms.read = True
            self._reply(f"+CMGR: {stat},,{len(sms.pdu) // 2 - 8}", sms.pdu, "OK")

    def _list(self, which: str) -> None:
        if not self._pdu_mode:
            self._reply("ERROR")
            return
        lines = []
        for sms in sorted(self.inbox.values(), key=lambda m: m.index):
            if which == "0" and sms.read:
                continue
            lines += [f"+CMGL: {sms.index},{1 if sms.read else 0},,{len(sms.pdu) // 2 - 8}",
                      sms.pdu]  # fmt: skip
            sms.read = True
        self._reply(*lines, "OK")

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
