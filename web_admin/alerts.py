"""Owns the alerts pages: queue state per channel, retry of a failed alert, the local mailbox."""

from __future__ import annotations

import email
import email.policy
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import func, select, update

from appliance.store.models import OutboxAlert, utcnow
from appliance.store.models_alerts import AlertDelivery

from .common import PAGE_SIZE, audit, file_in, get_config, get_local_db, page_arg

bp = Blueprint("alerts", __name__)

MAILBOX_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}\.eml$")


@bp.get("/alerts")
def index() -> Any:
    page = page_arg()
    state = request.args.get("state", "").strip()[:16]
    cond = [OutboxAlert.state == state] if state else []
    with get_local_db().session() as s:
        total = s.scalar(select(func.count(OutboxAlert.id)).where(*cond)) or 0
        alerts = list(
            s.scalars(
                select(OutboxAlert)
                .where(*cond)
                .order_by(OutboxAlert.created_at.desc())
                .limit(PAGE_SIZE)
                .offset((page - 1) * PAGE_SIZE)
            )
        )
        ids = [a.id for a in alerts]
        deliveries: dict[str, list[AlertDelivery]] = {}
        if ids:
            for d in s.scalars(
                select(AlertDelivery)
                .where(AlertDelivery.alert_id.in_(ids))
                .order_by(AlertDelivery.channel)
            ):
                deliveries.setdefault(d.alert_id, []).append(d)
        per_channel: Counter[tuple[str, str]] = Counter()
        next_try: dict[str, Any] = {}
        for channel, st, n, nxt in s.execute(
            select(
                AlertDelivery.channel,
                AlertDelivery.state,
                func.count(),
                func.min(AlertDelivery.next_attempt_at),
            ).group_by(AlertDelivery.channel, AlertDelivery.state)
        ):
            per_channel[(channel, st)] = n
            if st == "pending" and nxt is not None:
                next_try[channel] = nxt
        outbox = Counter(
            dict(
                s.execute(select(OutboxAlert.state, func.count()).group_by(OutboxAlert.state)).all()
            )
        )
    channels = sorted({c for c, _ in per_channel})
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template(
        "alerts.html", alerts=alerts, deliveries=deliveries, per_channel=per_channel,
        channels=channels, next_try=next_try, outbox=outbox, state=state, page=page, pages=pages,
    )  # fmt: skip


@bp.post("/alerts/<alert_id>/retry")
def retry(alert_id: str) -> Any:
    """A failed alert goes back to pending, due now; its failed channels are tried again."""
    now = utcnow()
    with get_local_db().session() as s:
        alert = s.get(OutboxAlert, alert_id[:36])
        if alert is None:
            abort(404)
        if alert.state != "failed":
            flash(f"Alert {alert.id[:8]} is {alert.state}; only a failed alert can be retried.",
                  "error")  # fmt: skip
            return redirect(url_for("alerts.index"))
        channels = list(
            s.scalars(
                select(AlertDelivery.channel).where(
                    AlertDelivery.alert_id == alert.id, AlertDelivery.state == "failed"
                )
            )
        )
        s.execute(
            update(AlertDelivery)
            .where(AlertDelivery.alert_id == alert.id, AlertDelivery.state == "failed")
            # a fresh budget of attempts: give-up counts attempts, not the clock
            .values(state="pending", next_attempt_at=now, first_failure_at=None, attempts=0)
        )
        alert.state = "pending"
        alert.next_attempt_at = now
        alert.delivered_at = None
        kind = alert.kind
    audit("alert_retry", f"alert {alert_id[:36]}", kind=kind, channels=channels)
    flash(f"Alert {alert_id[:8]} queued again ({', '.join(channels) or 'all channels'}).", "ok")
    return redirect(url_for("alerts.index"))


def _mailbox() -> Any:
    return get_config().mailbox_dir


@bp.get("/mailbox")
def mailbox() -> Any:
    d = _mailbox()
    files = sorted(
        (p for p in d.glob("*.eml") if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True
    ) if d.is_dir() else []  # fmt: skip
    items = []
    for p in files[:200]:
        msg = _read_message(p)
        items.append(
            {
                "name": p.name,
                "subject": msg.get("Subject", ""),
                "date": msg.get("Date", ""),
                "photos": [i for i, _ in _photos(msg)],
            }
        )
    return render_template("mailbox.html", items=items, total=len(files), path=d)


def _read_message(path: Path) -> Any:
    with open(path, "rb") as fh:
        return email.message_from_binary_file(fh, policy=email.policy.default)


def _message_path(name: str) -> Path:
    if not MAILBOX_NAME.match(name):
        abort(404)
    return file_in(_mailbox(), name, ".eml")


def _photos(msg: Any) -> list[tuple[int, bytes]]:
    """(attachment index, bytes) of the JPEG photos attached to a mailbox message."""
    out = []
    for i, part in enumerate(msg.iter_attachments()):
        if part.get_content_type() == "image/jpeg":
            data = part.get_payload(decode=True) or b""
            if data[:3] == b"\xff\xd8\xff":  # served as a picture only if it is a JPEG
                out.append((i, data))
    return out


@bp.get("/mailbox/<name>/photo/<int:index>.jpg")
def photo(name: str, index: int) -> Any:
    """The photo attached to a mailbox alert (the snapshot taken at the door)."""
    photos = dict(_photos(_read_message(_message_path(name))))
    if index not in photos:
        abort(404)
    return send_file(io.BytesIO(photos[index]), mimetype="image/jpeg", max_age=0)


@bp.get("/mailbox/<name>")
def message(name: str) -> Any:
    msg = _read_message(_message_path(name))
    body = msg.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    attachments = [
        {"name": part.get_filename() or "attachment", "type": part.get_content_type(),
         "size": len(part.get_payload(decode=True) or b"")}
        for part in msg.iter_attachments()
    ]  # fmt: skip
    headers = {k: msg.get(k, "") for k in ("From", "To", "Date", "Subject")}
    photos = [i for i, _ in _photos(msg)]
    return render_template("message.html", name=name, headers=headers, text=text,
                           attachments=attachments, photos=photos)  # fmt: skip
