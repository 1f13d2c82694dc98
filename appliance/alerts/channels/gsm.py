"""Owns the GSM modem SMS channel: AT commands in text mode over a serial port (pyserial)."""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata

from ...config import GsmConfig
from ..message import AlertMessage, ChannelError, number_key, recipients_failed
from ..render import sms_text

log = logging.getLogger(__name__)

SMS_LIMIT = 160
# what AT+CMGS takes (config normalises spaces and dashes away, see GsmConfig)
PHONE_RE = re.compile(r"\+?[0-9]{3,20}")
CTRL_Z = b"\x1a"
_FINAL = re.compile(r"^(OK|ERROR|\+CMS ERROR: ?\d+|\+CME ERROR: ?.+)$")
# characters of the GSM 03.38 extension table cost two septets; replace them deliberately
_GSM_SAFE = str.maketrans({"[": "(", "]": ")", "{": "(", "}": ")", "\\": "/", "~": "-",
                           "^": "'", "|": "/", "`": "'", "\x1a": " ", "\x1b": " ",
                           "\r": " ", "\n": " "})  # fmt: skip


class RecipientRefused(ChannelError):
    """The modem answered, but refused this number or message (+CMS ERROR, a bad number):
    the other recipients are still tried."""


def gsm_safe(text: str) -> str:
    """ASCII text that every modem's GSM charset sends as one septet per character."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "replace").decode("ascii")
    return ascii_text.translate(_GSM_SAFE)


def split_sms(text: str, max_parts: int) -> list[str]:
    """Split `text` into at most `max_parts` SMS of <= 160 characters, "(i/n) " prefixed.

    Splits at word boundaries; when even max_parts would not hold the text, the last part is
    shortened and ends with "...".
    """
    text = " ".join(gsm_safe(text).split())
    if len(text) <= SMS_LIMIT:
        return [text]
    # the widest prefix these parts can get: "(10/10) " is two characters more than "(9/9) "
    body = SMS_LIMIT - len(f"({max_parts}/{max_parts}) ")
    chunks: list[str] = []
    rest = text
    while rest:
        if len(rest) <= body:
            chunks.append(rest)
            break
        cut = rest.rfind(" ", 0, body + 1)
        if cut <= body // 2:
            cut = body
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if len(chunks) > max_parts:
        last = " ".join(chunks[max_parts - 1 :])
        if max_parts == 1:
            return [last[: SMS_LIMIT - 3].rstrip() + "..."]
        chunks = chunks[: max_parts - 1] + [last[: body - 3].rstrip() + "..."]
    n = len(chunks)
    return [f"({i}/{n}) {c}" for i, c in enumerate(chunks, 1)]


class GsmModem:
    """A text-mode SMS conversation with one modem; open() checks it is answering."""

    def __init__(self, port: str, baud: int, timeout_s: float, pin: str | None = None) -> None:
        self.port_name = port
        self.baud = baud
        self.timeout_s = timeout_s
        self.pin = pin
        self._serial = None
        self._buf = b""

    def open(self) -> None:
        import serial

        try:
            port = serial.Serial(self.port_name, self.baud, timeout=0.05, write_timeout=5)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ChannelError(f"gsm modem missing at {self.port_name}: {exc}") from exc
        port.reset_input_buffer()
        self._serial = port
        self.command("AT", timeout=min(self.timeout_s, 3.0))
        self.command("ATE0")
        if self.pin:
            status = self.command("AT+CPIN?")
            if any("SIM PIN" in line for line in status):
                self.command(f'AT+CPIN="{self.pin}"')
        self.command("AT+CMGF=1")

    def close(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            finally:
                self._serial = None

    # ---- low level -----------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        assert self._serial is not None
        try:
            self._serial.write(data)
            self._serial.flush()
        except OSError as exc:
            raise ChannelError(f"gsm modem write failed on {self.port_name}: {exc}") from exc

    def _read_until(self, done, timeout: float, what: str) -> bytes:
        assert self._serial is not None
        deadline = time.monotonic() + timeout
        while True:
            hit = done(self._buf)
            if hit is not None:
                return hit
            if time.monotonic() > deadline:
                raise ChannelError(f"gsm modem on {self.port_name}: no answer to {what} "
                                   f"within {timeout:.1f}s")  # fmt: skip
            try:
                chunk = self._serial.read(256)
            except OSError as exc:
                raise ChannelError(f"gsm modem read failed on {self.port_name}: {exc}") from exc
            self._buf += chunk

    def _final_lines(self, buf: bytes) -> bytes | None:
        lines = buf.split(b"\r\n")
        for i, raw in enumerate(lines[:-1]):  # complete lines only
            if _FINAL.match(raw.decode("ascii", "replace").strip()):
                taken = b"\r\n".join(lines[: i + 1])
                self._buf = b"\r\n".join(lines[i + 1 :])
                return taken
        return None

    def command(self, cmd: str, timeout: float | None = None) -> list[str]:
        """Send one AT command; the response lines without the final OK. Errors raise."""
        self._write(cmd.encode("ascii") + b"\r")
        raw = self._read_until(self._final_lines, timeout or self.timeout_s, cmd.split("=")[0])
        lines = [s.strip() for s in raw.decode("ascii", "replace").split("\r\n")]
        lines = [s for s in lines if s and s != cmd]
        final = lines[-1]
        if final != "OK":
            raise _modem_error(final, cmd.split("=")[0])
        return lines[:-1]

    def unsolicited(self, timeout: float) -> list[str]:
        """Complete lines the modem sends by itself (e.g. +CMTI) within `timeout` seconds; it
        returns at the first line, or with [] when there was none."""
        assert self._serial is not None
        deadline = time.monotonic() + timeout
        while True:
            if b"\r\n" in self._buf:
                *done, self._buf = self._buf.split(b"\r\n")
                lines = [raw.decode("ascii", "replace").strip() for raw in done]
                lines = [line for line in lines if line]
                if lines:
                    return lines
            if time.monotonic() >= deadline:
                return []
            try:
                self._buf += self._serial.read(256)
            except OSError as exc:
                raise ChannelError(f"gsm modem read failed on {self.port_name}: {exc}") from exc

    # ---- SMS -----------------------------------------------------------------------------
    def check_network(self) -> int:
        """Raise unless registered (home or roaming); the signal quality 0..31."""
        creg = " ".join(self.command("AT+CREG?"))
        m = re.search(r"\+CREG: ?\d+,(\d+)", creg)
        if not m or m.group(1) not in ("1", "5"):
            stat = m.group(1) if m else "?"
            raise ChannelError(f"gsm modem not registered on a network (CREG stat={stat})")
        csq = " ".join(self.command("AT+CSQ"))
        m = re.search(r"\+CSQ: ?(\d+),", csq)
        rssi = int(m.group(1)) if m else 99
        if rssi in (0, 99):
            raise ChannelError(f"gsm modem has no usable signal (CSQ rssi={rssi})")
        return rssi

    def send_sms(self, number: str, text: str) -> int:
        """Send one text-mode SMS; the modem's message reference."""
        if not PHONE_RE.fullmatch(number):
            raise RecipientRefused(f"gsm: bad phone number {number!r}", transient=False)
        self._write(f'AT+CMGS="{number}"\r'.encode("ascii"))

        def prompt(buf: bytes) -> bytes | None:
            if b">" in buf:
                self._buf = b""
                return b">"
            if b"ERROR" in buf and buf.endswith(b"\r\n"):
                return buf
            return None

        got = self._read_until(prompt, min(self.timeout_s, 5.0), "AT+CMGS prompt")
        if got != b">":
            self._buf = b""
            raise _modem_error(got.decode("ascii", "replace").strip(), "AT+CMGS")
        self._write(text.encode("ascii", "replace") + CTRL_Z)
        raw = self._read_until(self._final_lines, self.timeout_s, "AT+CMGS text")
        lines = [s.strip() for s in raw.decode("ascii", "replace").split("\r\n") if s.strip()]
        if lines[-1] != "OK":
            raise _modem_error(lines[-1], "AT+CMGS")
        for line in lines:
            m = re.match(r"\+CMGS: ?(\d+)", line)
            if m:
                return int(m.group(1))
        raise ChannelError("gsm modem answered OK without +CMGS reference")


def _modem_error(final: str, what: str) -> ChannelError:
    m = re.match(r"\+CMS ERROR: ?(\d+)", final)
    if m:
        code = int(m.group(1))
        # 300-340: ME/SIM failures that a retry may fix; 1-127 network rejections of the number
        transient = not (1 <= code <= 127 and code not in (38, 41, 42, 47))
        # the modem answered: this number (or this message) failed, not the modem
        return RecipientRefused(f"gsm {what}: +CMS ERROR {code}", transient=transient)
    return ChannelError(f"gsm {what}: {final}")


_PORT_LOCKS: dict[str, threading.Lock] = {}
_PORT_LOCKS_GUARD = threading.Lock()


def port_lock(port: str) -> threading.Lock:
    """One lock per serial port in this process: the channel and the health probe take turns."""
    with _PORT_LOCKS_GUARD:
        return _PORT_LOCKS.setdefault(port, threading.Lock())


class GsmChannel:
    """Sends the alert as text-mode SMS through a serial GSM modem to every configured number."""

    name = "gsm"

    def __init__(self, config: GsmConfig, pin: str | None = None) -> None:
        self.config = config
        self.pin = pin
        self.last_refs: list[int] = []

    def send(self, message: AlertMessage) -> None:
        c = self.config
        parts = split_sms(sms_text(message), c.max_parts)
        numbers = c.recipients(message.kind)
        if not numbers:
            raise ChannelError(f"alerts.gsm has no recipient for {message.kind}", transient=False)
        todo = [n for n in numbers if number_key(n) not in message.skip_recipients]
        modem = GsmModem(c.port, c.baud, c.timeout_s, self.pin)
        refs: list[int] = []
        reached: list[str] = []
        failures: list[ChannelError] = []
        rssi = 0
        with port_lock(c.port):
            try:
                if todo:
                    modem.open()
                    rssi = modem.check_network()
                # every number is tried: a number the network refuses must not keep the alert
                # from the others; a modem that stops answering ends the round (the numbers
                # not tried are tried again with the delivery)
                for number in todo:
                    try:
                        for part in parts:
                            refs.append(modem.send_sms(number, part))
                    except RecipientRefused as exc:
                        failures.append(exc)
                        continue
                    except ChannelError as exc:
                        failures.append(exc)
                        break
                    reached.append(number_key(number))
            finally:
                modem.close()
        self.last_refs = refs
        if failures:
            raise recipients_failed(failures, tuple(reached))
        log.info("event=gsm_sent alert=%s parts=%d recipients=%d rssi=%d refs=%s",
                 message.id, len(parts), len(todo), rssi, refs)  # fmt: skip

    def close(self) -> None:
        pass
