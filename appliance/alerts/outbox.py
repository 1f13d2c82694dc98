"""Owns writing alerts to the outbox, inside the caller's transaction (with their event)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from appliance.store.models import AccessEvent, OutboxAlert

from .incidents import DEFAULT_HOLD_S, DEFAULT_WINDOW_S, record_alert


def enqueue_alert(
    session: Session,
    *,
    event: AccessEvent,
    detail: str = "",
    priority: int = 0,
    kind: str | None = None,
    snapshot_path: str | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    hold_s: float = DEFAULT_HOLD_S,
) -> OutboxAlert:
    """Add an alert for `event` to `session`; it commits (or not) together with the event.

    Intrusion events of one burst are folded into one incident alert (see incidents.py);
    pass config.alerts.incident_window_s / incident_hold_s to follow the configuration.
    """
    return record_alert(
        session,
        event=event,
        kind=kind or event.kind,
        device_id=event.device_id,
        detail=detail,
        snapshot_path=snapshot_path or event.snapshot_path,
        priority=priority,
        now=event.ts,
        window_s=window_s,
        hold_s=hold_s,
    )
