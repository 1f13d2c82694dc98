"""Owns turning an AlertMessage into text: template fields, email bodies and SMS texts."""

from __future__ import annotations

from .message import AlertMessage

DEFAULT_BODY = """{title} at {door} ({device})

Time:        {time}
Event:       {kind}
User number: {user}
Distance:    {distance}
Events:      {count}
{detail}
Alert id: {id}
"""


def fields(message: AlertMessage) -> dict[str, object]:
    """The placeholders a subject/body template may use."""
    return {
        "id": message.id,
        "kind": message.kind,
        "title": message.title,
        "door": message.door,
        "device": message.device_id,
        "time": message.time.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "user": "-" if message.user_number is None else str(message.user_number),
        "distance": "-" if message.distance is None else f"{message.distance:.2f}",
        "count": message.count,
        "detail": message.detail,
        "summary": message.summary(),
    }


def sms_text(message: AlertMessage) -> str:
    """One SMS-sized text: the summary plus a short reference to the alert id."""
    text = f"Doorward: {message.summary()}"
    if message.detail:
        text += f". {message.detail}"
    return f"{text} (ref {message.id[:8]})"
