"""Owns SMS commands through the GSM modem: read incoming messages, act on the allowed ones
(RemoteControl decides), answer every command by SMS, delete what was read.

The modem is shared with the GSM alert channel (one lock per port, alerts.channels.gsm). The
reader works in short sessions: take the port, list every stored message (a sweep, so a lost
+CMTI indication costs only latency), then listen for +CMTI for `listen_s`, then give the port
back for `poll_s`. Messages are read in PDU mode (the sender's text can never look like the
modem's own answers) and deleted before they are acted on: a crash in between loses that one
message (the owner sends a new code), it never acts twice.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.alerts.channels.gsm import GsmModem, gsm_safe, port_lock
from appliance.alerts.message import ChannelError

from .control import RemoteControl, Reply, Request
from .pdu import Delivered, PduError, decode_deliver

log = logging.getLogger(__name__)

_CMTI = re.compile(r'^\+CMTI: ?"?\w*"?,(\d+)$')
_CMGL = re.compile(r"^\+CMGL: ?(\d+),")
_COMMANDS = {
    "STATUS": "status",
    "UNLOCK": "unlock",
    "SNAPSHOT": "snapshot",
    "LOCKDOWN ON": "lockdown_on",
    "LOCKDOWN OFF": "lockdown_off",
}
_SMS_RE = re.compile(r"^(STATUS|UNLOCK|SNAPSHOT|LOCKDOWN ON|LOCKDOWN OFF)(?: (\S+))?$")


def parse_command(text: str) -> tuple[str, str | None] | None:
    """'unlock 123456' -> ('unlock', '123456'); None for text that is no command."""
    words = " ".join(text.upper().split())
    m = _SMS_RE.match(words)
    if m is None:
        return None
    return _COMMANDS[m.group(1)], m.group(2)


@dataclass
class Handled:
    index: int
    sender: str
    text: str
    reply: Reply | None  # None: not a command (ignored)
    answered: bool


class SmsCommandReader:
    """Reads commands from the modem in `[alerts.gsm]` and hands them to RemoteControl."""

    def __init__(
        self,
        port: str,
        baud: int,
        control: RemoteControl,
        *,
        pin: str | None = None,
        timeout_s: float = 10.0,
        poll_s: float = 10.0,
        listen_s: float = 2.0,
        on_handled: Callable[[Handled], None] | None = None,
    ) -> None:
        self.port = port
        self.baud = baud
        self.pin = pin
        self.timeout_s = timeout_s
        self.control = control
        self.poll_s = poll_s
        self.listen_s = listen_s
        self.on_handled = on_handled
        self.handled: list[Handled] = []
        self.sessions = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- one session ---------------------------------------------------------------------
    def run_once(self, listen_s: float | None = None) -> int:
        """Take the port, read and act on every stored message, listen for new ones; the
        number of messages handled. Raises ChannelError when the modem does not answer."""
        listen = self.listen_s if listen_s is None else listen_s
        modem = GsmModem(self.port, self.baud, self.timeout_s, self.pin)
        n = 0
        with port_lock(self.port):
            try:
                modem.open()
                modem.command("AT+CNMI=2,1,0,0,0")  # +CMTI for each new stored message
                modem.command("AT+CMGF=0")  # read in PDU mode
                pending = self._sweep(modem)
                deadline = time.monotonic() + listen
                while True:
                    while pending:
                        n += self._handle(modem, pending.pop(0), pending)
                    left = deadline - time.monotonic()
                    if left <= 0 or self._stop.is_set():
                        break
                    for line in modem.unsolicited(min(left, 0.5)):
                        m = _CMTI.match(line)
                        if m and int(m.group(1)) not in pending:
                            pending.append(int(m.group(1)))
            finally:
                modem.close()
        self.sessions += 1
        return n

    def _sweep(self, modem: GsmModem) -> list[int]:
        """Every index stored (read or not), plus any +CMTI that arrived meanwhile."""
        lines = modem.command("AT+CMGL=4")  # 4 = all messages, in PDU mode
        found: list[int] = []
        for line in lines:
            m = _CMGL.match(line) or _CMTI.match(line)
            if m and int(m.group(1)) not in found:
                found.append(int(m.group(1)))
        return found

    def _handle(self, modem: GsmModem, index: int, pending: list[int]) -> int:
        try:
            lines = modem.command(f"AT+CMGR={index}")
        except ChannelError as exc:  # announced, then lost by the modem
            log.warning("event=sms_lost index=%d error=%r", index, str(exc))
            return 0
        pdu = None
        for i, line in enumerate(lines):
            m = _CMTI.match(line)
            if m and int(m.group(1)) not in pending and int(m.group(1)) != index:
                pending.append(int(m.group(1)))
            elif line.startswith("+CMGR:") and i + 1 < len(lines):
                pdu = lines[i + 1]
        self._delete(modem, index)
        if pdu is None:
            log.warning("event=sms_lost index=%d reason=empty_read", index)
            return 0
        try:
            sms = decode_deliver(pdu)
        except PduError as exc:
            log.warning("event=sms_unreadable index=%d error=%r", index, str(exc))
            return 0
        self._act(modem, index, sms)
        return 1

    def _delete(self, modem: GsmModem, index: int) -> None:
        try:
            modem.command(f"AT+CMGD={index}")
        except ChannelError as exc:
            log.warning("event=sms_delete_failed index=%d error=%r", index, str(exc))

    def _act(self, modem: GsmModem, index: int, sms: Delivered) -> None:
        parsed = None if sms.concatenated else parse_command(sms.text)
        if parsed is None:
            # not a command: ignored, and logged without its text (it may be anything)
            log.warning("event=sms_ignored sender=%r sender_type=%s chars=%d", sms.sender,
                        sms.sender_type, len(sms.text))  # fmt: skip
            self._done(Handled(index, sms.sender, sms.text, None, False))
            return
        action, code = parsed
        number = sms.sender if sms.sender_type == "international" else f"?{sms.sender}"
        reply = self.control.handle(Request(action, "sms", number, f"sms:{sms.sender}"[:96], code))
        answered = False
        if reply.answer and sms.sender_type == "international":
            try:
                modem.command("AT+CMGF=1")
                modem.send_sms(sms.sender, gsm_safe(reply.text)[:160])
                answered = True
            except ChannelError as exc:
                log.error("event=sms_reply_failed to=%s error=%r", sms.sender, str(exc))
            finally:
                try:
                    modem.command("AT+CMGF=0")
                except ChannelError as exc:
                    log.warning("event=sms_mode_reset_failed error=%r", str(exc))
        self._done(Handled(index, sms.sender, sms.text, reply, answered))

    def _done(self, h: Handled) -> None:
        self.handled = (self.handled + [h])[-100:]
        if self.on_handled is not None:
            self.on_handled(h)

    # ---- thread --------------------------------------------------------------------------
    def start(self) -> SmsCommandReader:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sms-commands", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self.last_error = None
            except ChannelError as exc:
                if self.last_error != str(exc):
                    log.error("event=sms_reader_failed error=%r", str(exc))
                self.last_error = str(exc)
            except Exception:
                log.exception("event=sms_reader_error")
            self._stop.wait(self.poll_s)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
