"""Owns writing alerts to the outbox, inside the caller's transaction (with their event)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from appliance.store.models import AccessEvent, OutboxAlert


def enqueue_alert(
    session: Session,
    *,
    event: AccessEvent,
    detail: str = "",
    priority: int = 0,
) -> OutboxAlert:
    """Add an alert for `event` to `session`; it commits (or not) together with the event."""
    alert = OutboxAlert(
        event_id=event.id,
        kind=event.kind,
        created_at=event.ts,
        priority=priority,
        user_number=event.user_number,
        distance=event.distance,
        detail=detail,
        snapshot_path=event.snapshot_path,
    )
    session.add(alert)
    return alert
