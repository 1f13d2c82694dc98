"""Owns incident grouping: a burst of intrusion events becomes one outbox alert with a count."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from appliance.core.kinds import EventKind

from ..store.models import AccessEvent, OutboxAlert, utcnow

# one burst of these (wrong codes -> lockout, then a denied face...) is one incident
GROUPABLE_KINDS = EventKind.where("groupable")
# never grouped, never capped, sent first
URGENT_KINDS = EventKind.where("urgent")
URGENT_PRIORITY = 100
DEFAULT_WINDOW_S = 180.0
DEFAULT_HOLD_S = 60.0


def incident_key(device_id: str, kind: str) -> str | None:
    return f"{device_id}:intrusion" if kind in GROUPABLE_KINDS else None


def _photo_rank(snapshot_path: str | None, distance: float | None, quality: float) -> tuple:
    # a photo beats none; a photo where a face was measured beats one without; then quality
    return (snapshot_path is not None, distance is not None, quality)


def _quality(event: AccessEvent | None) -> float:
    detail = event.detail if event is not None else None
    if isinstance(detail, dict):
        try:
            return float(detail.get("face_quality", 0.0))
        except (TypeError, ValueError):
            return 0.0
    return 0.0


def record_alert(
    session: Session,
    *,
    event: AccessEvent | None,
    kind: str,
    device_id: str,
    detail: str = "",
    snapshot_path: str | None = None,
    priority: int = 0,
    now: datetime | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    hold_s: float = DEFAULT_HOLD_S,
) -> OutboxAlert:
    """Add (or fold into an open incident) the outbox alert for `event`, in the caller's session.

    The caller commits: the alert lands in the same transaction as its event. Folding happens
    only into an alert the dispatcher has not picked up yet (attempts == 0, checked by a guarded
    UPDATE so a concurrent pick-up cannot lose the count); once the first alert of an incident is
    out, the rest of the burst collects in one follow-up alert held for `hold_s`.
    """
    now = now or utcnow()
    user_number = event.user_number if event is not None else None
    distance = event.distance if event is not None else None
    event_id = event.id if event is not None else None
    if kind in URGENT_KINDS:
        priority = max(priority, URGENT_PRIORITY)
    key = incident_key(device_id, kind)
    next_at = None
    count = 1
    if key is not None:
        latest = session.scalars(
            select(OutboxAlert)
            .where(
                OutboxAlert.incident_key == key,
                OutboxAlert.last_event_at >= now - timedelta(seconds=window_s),
            )
            .order_by(OutboxAlert.created_at.desc())
            .limit(1)
        ).first()
        if latest is not None:
            if latest.state == "pending" and latest.attempts == 0:
                values: dict[str, Any] = {
                    "count": OutboxAlert.count + 1,
                    "last_event_at": now,
                    "detail": _join_detail(latest.detail, kind, detail),
                    "priority": max(latest.priority, priority),
                }
                new_rank = _photo_rank(snapshot_path, distance, _quality(event))
                if new_rank > _photo_rank(latest.snapshot_path, latest.distance, 0.0):
                    values.update(
                        snapshot_path=snapshot_path,
                        distance=distance,
                        user_number=user_number if user_number is not None else latest.user_number,
                        event_id=event_id,
                    )
                res = session.execute(
                    update(OutboxAlert)
                    .where(OutboxAlert.id == latest.id, OutboxAlert.attempts == 0)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if res.rowcount == 1:  # type: ignore[attr-defined]
                    session.refresh(latest)
                    return latest
            # the incident's alert is already out: collect the rest of the burst in a follow-up
            next_at = now + timedelta(seconds=hold_s)
            detail = _join_detail(f"follow-up to alert {latest.id[:8]}", kind, detail)
    alert = OutboxAlert(
        event_id=event_id,
        kind=kind,
        created_at=now,
        state="pending",
        priority=priority,
        user_number=user_number,
        distance=distance,
        detail=detail,
        snapshot_path=snapshot_path,
        count=count,
        attempts=0,
        next_attempt_at=next_at,
        incident_key=key,
        last_event_at=now,
    )
    session.add(alert)
    session.flush()
    return alert


def _join_detail(old: str, kind: str, detail: str) -> str:
    piece = f"+{kind}" + (f": {detail}" if detail else "")
    joined = f"{old}; {piece}" if old else piece
    return joined if len(joined) <= 2000 else joined[:1997] + "..."
