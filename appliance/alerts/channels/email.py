"""Owns the SMTP email channel: STARTTLS/TLS/plain, optional login, JPEG attached."""

from __future__ import annotations

import dataclasses
import logging
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import format_datetime

from ...config import EmailConfig
from ..message import AlertMessage, ChannelError
from ..render import DEFAULT_BODY, fields

log = logging.getLogger(__name__)

# a connection is kept this long after a send, so a backlog drains without reconnecting
KEEPALIVE_S = 15.0
TOO_BIG = 552  # SMTP: message size exceeds the fixed maximum (RFC 5321 4.5.3.1.10)


def message_id(alert_id: str, device_id: str) -> str:
    """The Message-ID derived from the alert UUID: the receiving side's de-duplication key."""
    return f"<{alert_id}@{device_id}.doorward>"


class EmailChannel:
    """Sends one email per alert to every configured recipient (one thread at a time)."""

    name = "email"

    def __init__(self, config: EmailConfig, password: str | None = None) -> None:
        self.config = config
        self._password = password
        self._smtp: smtplib.SMTP | None = None
        self._last_used = 0.0
        # monotonic time by which a send must be over (the dispatcher's flush --timeout)
        self.deadline: float | None = None

    def build(self, message: AlertMessage, note: str | None = None) -> EmailMessage:
        c = self.config
        values = fields(message)
        msg = EmailMessage()
        msg["Subject"] = c.subject_template.format(**values)
        msg["From"] = c.from_
        to = c.recipients(message.kind)
        if not to:
            raise ChannelError(f"alerts.email has no recipient for {message.kind}", transient=False)
        msg["To"] = ", ".join(to)
        msg["Date"] = format_datetime(message.time)
        msg["Message-ID"] = message_id(message.id, message.device_id)
        msg["X-Doorward-Alert"] = message.id
        msg["X-Doorward-Kind"] = message.kind
        body = (c.body_template or DEFAULT_BODY).format(**values)
        if note:
            msg["X-Doorward-Photo"] = "left out"
            body = f"{body.rstrip()}\n\n{note}\n"
        msg.set_content(body)
        if message.photo_jpeg:
            msg.add_attachment(
                message.photo_jpeg,
                maintype="image",
                subtype="jpeg",
                filename=f"{message.kind}-{message.id[:8]}.jpg",
            )
        return msg

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        if self.config.ca_file:
            ctx.load_verify_locations(cafile=str(self.config.ca_file))
        return ctx

    def _timeout(self) -> float:
        """timeout_s, or less when the deadline is nearer."""
        t = self.config.timeout_s
        if self.deadline is not None:
            t = min(t, self.deadline - time.monotonic())
        if t <= 0:
            raise ChannelError("smtp: no time left before the deadline")
        return max(0.05, t)

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        if c.security == "tls":
            return smtplib.SMTP_SSL(c.host, c.port, timeout=self._timeout(),
                                    context=self._context())  # fmt: skip
        smtp = smtplib.SMTP(c.host, c.port, timeout=self._timeout())
        if c.security == "starttls":
            smtp.starttls(context=self._context())
        return smtp

    def _session(self) -> smtplib.SMTP:
        """An open, logged-in connection: the kept one if it is fresh and answers NOOP."""
        c = self.config
        if self._smtp is not None:
            if time.monotonic() - self._last_used < KEEPALIVE_S:
                try:
                    if self._smtp.noop()[0] == 250:
                        return self._smtp
                except (OSError, smtplib.SMTPException):
                    pass
            self._drop()
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"smtp {c.host}:{c.port} unreachable: {exc}") from exc
        self._smtp = smtp
        if c.username:
            smtp.login(c.username, self._password or "")
        return smtp

    def _drop(self, *, polite: bool = False) -> None:
        """Forget the connection; QUIT only when it is known to answer (`polite`): a server
        that just timed out would make QUIT wait out the timeout once more."""
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        if polite:
            try:
                smtp.quit()
                return
            except (OSError, smtplib.SMTPException):
                pass
        smtp.close()

    def _transmit(self, smtp: smtplib.SMTP, msg: EmailMessage, stage: list[str]) -> dict:
        """MAIL, RCPT, DATA by hand, so the caller knows whether DATA was reached."""
        if smtp.sock is not None:
            smtp.sock.settimeout(self._timeout())
        from_addr = msg["From"]
        to = [a.strip() for a in str(msg["To"]).split(",")]
        smtp.ehlo_or_helo_if_needed()
        code, resp = smtp.mail(from_addr)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, resp, from_addr)
        refused = {}
        for addr in to:
            code, resp = smtp.rcpt(addr)
            if code not in (250, 251):
                refused[addr] = (code, resp)
        if len(refused) == len(to):
            smtp.rset()
            raise smtplib.SMTPRecipientsRefused(refused)
        stage[0] = "data"  # from here on the message may reach the server
        code, resp = smtp.data(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))
        if code != 250:
            raise smtplib.SMTPDataError(code, resp)
        return refused

    def send(self, message: AlertMessage) -> None:
        """The alert with its photo; without it when the photo is over max_photo_bytes, or
        when the relay refused the message as too big (552: it was not taken, so sending it
        again smaller cannot make a duplicate)."""
        c = self.config
        photo = message.photo_jpeg
        if photo and len(photo) > c.max_photo_bytes:
            log.warning("event=email_photo_left_out alert=%s bytes=%d max_photo_bytes=%d",
                        message.id, len(photo), c.max_photo_bytes)  # fmt: skip
            self._send_without_photo(
                message, f"it is over alerts.email.max_photo_bytes ({c.max_photo_bytes})"
            )
            return
        try:
            self._send(self.build(message))
        except ChannelError as exc:
            cause = exc.__cause__
            too_big = isinstance(cause, smtplib.SMTPResponseException) and (
                cause.smtp_code == TOO_BIG
            )
            if not (photo and too_big):
                raise
            log.warning("event=email_photo_left_out alert=%s bytes=%d reason=smtp_552",
                        message.id, len(photo))  # fmt: skip
            self._send_without_photo(message, "the mail relay refused the message as too big")

    def _send_without_photo(self, message: AlertMessage, why: str) -> None:
        size = len(message.photo_jpeg or b"")
        note = f"The photo ({size} bytes) was left out: {why}; it is on the door."
        self._send(self.build(dataclasses.replace(message, photo_jpeg=None), note))

    def _send(self, msg: EmailMessage) -> None:
        """One transmission at most: a kept connection that turns out dead before DATA is
        replaced by a fresh one; any failure after DATA began is reported as uncertain and
        never resent here (the receiving side may have the message already)."""
        c = self.config
        stage = ["before"]
        try:
            try:
                refused = self._transmit(self._session(), msg, stage)
            except smtplib.SMTPServerDisconnected:
                if stage[0] == "data":
                    raise
                self._drop()  # a kept connection the server had closed: one fresh try
                refused = self._transmit(self._session(), msg, stage)
            self._last_used = time.monotonic()
            if refused:
                raise ChannelError(f"smtp refused recipients {sorted(refused)}", transient=False)
        except ChannelError:
            self._drop()
            raise
        except smtplib.SMTPAuthenticationError as exc:
            self._drop()
            error = f"smtp login failed for {c.username}: {exc}"
            raise ChannelError(error, transient=False) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            self._drop()
            error = f"smtp refused recipients {sorted(exc.recipients)}"
            raise ChannelError(error, transient=False) from exc
        except smtplib.SMTPResponseException as exc:
            self._drop()
            permanent = 500 <= exc.smtp_code < 600
            error = f"smtp {exc.smtp_code}: {exc.smtp_error!r}"
            raise ChannelError(error, transient=not permanent) from exc
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            self._drop()
            after = stage[0] == "data"
            where = " after DATA (may have arrived)" if after else ""
            raise ChannelError(f"smtp {c.host}:{c.port} failed{where}: {exc}",
                               uncertain=after) from exc  # fmt: skip

    def close(self) -> None:
        self._drop(polite=True)

    def __enter__(self) -> EmailChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
