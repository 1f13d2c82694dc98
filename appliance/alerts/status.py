"""Owns the outbox summary: alert counts by state and delivery counts by channel."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ..store.db import Database
from ..store.models import OutboxAlert
from ..store.models_alerts import AlertDelivery


def outbox_status(db: Database) -> dict[str, Any]:
    """{"alerts": {state: n}, "channels": {channel: {state: n}}, "oldest_pending": iso|None}."""
    with db.session() as s:
        alerts = {"pending": 0, "delivered": 0, "failed": 0}
        for state, n in s.execute(
            select(OutboxAlert.state, func.count()).group_by(OutboxAlert.state)
        ):
            alerts[state] = n
        channels: dict[str, dict[str, int]] = {}
        for channel, state, n in s.execute(
            select(AlertDelivery.channel, AlertDelivery.state, func.count()).group_by(
                AlertDelivery.channel, AlertDelivery.state
            )
        ):
            channels.setdefault(channel, {})[state] = n
        oldest = s.scalar(
            select(func.min(OutboxAlert.created_at)).where(OutboxAlert.state == "pending")
        )
        failed = [
            {
                "id": a.id,
                "kind": a.kind,
                "created_at": a.created_at.isoformat(),
                "error": a.last_error,
            }  # fmt: skip
            for a in s.scalars(
                select(OutboxAlert)
                .where(OutboxAlert.state == "failed")
                .order_by(OutboxAlert.created_at.desc())
                .limit(20)
            )
        ]
    return {
        "alerts": alerts,
        "channels": channels,
        "oldest_pending": None if oldest is None else str(oldest),
        "recent_failed": failed,
    }
