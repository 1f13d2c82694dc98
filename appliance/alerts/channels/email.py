"""Owns the SMTP email channel: STARTTLS/TLS/plain, optional login, JPEG attached."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime

from ...config import EmailConfig
from ..message import AlertMessage, ChannelError
from ..render import DEFAULT_BODY, fields


def message_id(alert_id: str, device_id: str) -> str:
    """The Message-ID derived from the alert UUID: the receiving side's de-duplication key."""
    return f"<{alert_id}@{device_id}.doorward>"


class EmailChannel:
    """Sends one email per alert to every configured recipient."""

    name = "email"

    def __init__(self, config: EmailConfig, password: str | None = None) -> None:
        self.config = config
        self._password = password

    def build(self, message: AlertMessage) -> EmailMessage:
        c = self.config
        values = fields(message)
        msg = EmailMessage()
        msg["Subject"] = c.subject_template.format(**values)
        msg["From"] = c.from_
        msg["To"] = ", ".join(c.to)
        msg["Date"] = format_datetime(message.time)
        msg["Message-ID"] = message_id(message.id, message.device_id)
        msg["X-Doorward-Alert"] = message.id
        msg["X-Doorward-Kind"] = message.kind
        msg.set_content((c.body_template or DEFAULT_BODY).format(**values))
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

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        if c.security == "tls":
            return smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout_s, context=self._context())
        smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
        if c.security == "starttls":
            smtp.starttls(context=self._context())
        return smtp

    def send(self, message: AlertMessage) -> None:
        c = self.config
        msg = self.build(message)
        try:
            smtp = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"smtp {c.host}:{c.port} unreachable: {exc}") from exc
        try:
            if c.username:
                smtp.login(c.username, self._password or "")
            refused = smtp.send_message(msg)
            if refused:
                raise ChannelError(f"smtp refused recipients {sorted(refused)}", transient=False)
        except smtplib.SMTPAuthenticationError as exc:
            error = f"smtp login failed for {c.username}: {exc}"
            raise ChannelError(error, transient=False) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            error = f"smtp refused recipients {sorted(exc.recipients)}"
            raise ChannelError(error, transient=False) from exc
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600
            error = f"smtp {exc.smtp_code}: {exc.smtp_error!r}"
            raise ChannelError(error, transient=not permanent) from exc
        except (TimeoutError, OSError, smtplib.SMTPException) as exc:
            raise ChannelError(f"smtp {c.host}:{c.port} failed: {exc}") from exc
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def close(self) -> None:
        pass
