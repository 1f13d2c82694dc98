"""Owns the local mailbox channel: each alert becomes an .eml file with its photo attached."""

from __future__ import annotations

import os
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from appliance.alerts.message import AlertMessage, ChannelError


def build_email(message: AlertMessage, *, sender: str, to: list[str]) -> EmailMessage:
    """The email for an alert (also used by the SMTP channel): text body + JPEG attachment."""
    mail = EmailMessage()
    mail["Subject"] = f"[Doorward] {message.summary()}"
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = format_datetime(message.time)
    mail["Message-ID"] = f"<{message.id}@doorward>"
    lines = [
        f"Event: {message.title} ({message.kind})",
        f"Door: {message.door} [{message.device_id}]",
        f"Time: {message.time.isoformat()}",
        f"User number tried: {message.user_number if message.user_number is not None else '-'}",
        f"Face distance: {f'{message.distance:.3f}' if message.distance is not None else '-'}",
    ]
    if message.count > 1:
        lines.append(f"Events grouped in this alert: {message.count}")
    if message.detail:
        lines.append(f"Detail: {message.detail}")
    lines.append(f"Alert id: {message.id}")
    mail.set_content("\n".join(lines) + "\n")
    if message.photo_jpeg:
        mail.add_attachment(
            message.photo_jpeg, maintype="image", subtype="jpeg", filename=f"{message.id}.jpg"
        )
    return mail


class MailboxChannel:
    """Writes <alert id>.eml atomically; delivering the same alert twice keeps one file."""

    name = "mailbox"

    def __init__(self, directory: Path, *, sender: str = "doorward@localhost") -> None:
        self.directory = Path(directory)
        self.sender = sender

    def path_for(self, alert_id: str) -> Path:
        return self.directory / f"{alert_id}.eml"

    def send(self, message: AlertMessage) -> None:
        try:
            from appliance.security import private_dir

            private_dir(self.directory)  # alert photos: the owner's only, whatever the umask
            final = self.path_for(message.id)
            tmp = final.with_suffix(".tmp")
            data = build_email(message, sender=self.sender, to=["owner@localhost"]).as_bytes()
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            raise ChannelError(f"mailbox {self.directory}: {exc}") from exc

    def close(self) -> None:
        pass
