"""Owns the dashboard: door state, today's events, a 30-day chart drawn as server-side SVG."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, render_template
from sqlalchemy import func, select

from appliance.store.models import AccessEvent, Device, OutboxAlert, User, utcnow

from .common import get_config, get_db, get_door

bp = Blueprint("dashboard", __name__)

SERIES = ("grants", "denials", "alerts")
DENIALS = {"code_wrong", "lockout"}  # the kinds recorded (there is no "locked_out" event)


def series_of(kind: str) -> str | None:
    if kind == "granted":
        return "grants"
    if kind.startswith("denied") or kind in DENIALS:
        return "denials"
    return None


def daily_counts(now: datetime, days: int = 30) -> list[tuple[date, dict[str, int]]]:
    """Grants, denials and alerts per UTC day, oldest first, `days` days ending today."""
    first = (now - timedelta(days=days - 1)).date()
    start = datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)
    counts: dict[date, Counter[str]] = {first + timedelta(days=i): Counter() for i in range(days)}
    with get_db().session() as s:
        for ts, kind in s.execute(
            select(AccessEvent.ts, AccessEvent.kind).where(AccessEvent.ts >= start)
        ):
            name = series_of(kind)
            if name and ts.date() in counts:
                counts[ts.date()][name] += 1
        for (ts,) in s.execute(
            select(OutboxAlert.created_at).where(OutboxAlert.created_at >= start)
        ):
            if ts.date() in counts:
                counts[ts.date()]["alerts"] += 1
    return [(d, {k: c[k] for k in SERIES}) for d, c in counts.items()]


def chart(days: list[tuple[date, dict[str, int]]]) -> dict[str, Any]:
    """Bar geometry for the SVG template (viewBox 0 0 W H)."""
    w, h, left, bottom, top = 720, 240, 34, 28, 12
    plot_h = h - bottom - top
    peak = max([1] + [v for _, c in days for v in c.values()])
    step = 1 if peak <= 5 else 2 if peak <= 10 else 5 if peak <= 25 else -(-peak // 5)
    peak = -(-peak // step) * step
    slot = (w - left - 4) / len(days)
    bar = max(1.0, slot / 4)
    bars, labels = [], []
    for i, (d, c) in enumerate(days):
        x0 = left + i * slot + slot / 8
        for j, name in enumerate(SERIES):
            v = c[name]
            bh = plot_h * v / peak
            bars.append(
                {"x": round(x0 + j * bar, 1), "y": round(top + plot_h - bh, 1), "w": round(bar, 1),
                 "h": round(bh, 1), "cls": name, "title": f"{d:%b %d}: {v} {name}"}
            )  # fmt: skip
        if i % 5 == 0 or i == len(days) - 1:
            labels.append({"x": round(left + i * slot + slot / 2, 1), "text": f"{d:%d %b}"})
    ticks = [
        {"y": round(top + plot_h - plot_h * v / peak, 1), "text": str(v)}
        for v in range(0, peak + 1, step)
    ]
    totals = {name: sum(c[name] for _, c in days) for name in SERIES}
    return {"w": w, "h": h, "left": left, "base": top + plot_h, "bars": bars, "labels": labels,
            "ticks": ticks, "totals": totals}  # fmt: skip


@bp.get("/")
def index() -> Any:
    from .accounts import initial_password_path
    from .device import status as device_status

    now = utcnow()
    door = get_door()
    status = device_status()
    config = get_config()
    today = datetime.combine(now.date(), datetime.min.time(), tzinfo=now.tzinfo)
    with get_db().session() as s:
        events = list(
            s.scalars(
                select(AccessEvent)
                .where(AccessEvent.ts >= today)
                .order_by(AccessEvent.ts.desc())
                .limit(50)
            )
        )
        devices = list(s.scalars(select(Device).order_by(Device.id)))
        users = s.scalar(select(func.count()).select_from(User)) or 0
    kinds = Counter(e.kind for e in events)
    first_steps = None
    if users == 0:
        first_steps = {
            "simulated": door is not None and door.simulator is not None,
            "password_file": str(initial_password_path(config.data_dir)),
            "replay_empty": config.camera.kind == "replay" and not config.camera.sources,
        }
    return render_template(
        "dashboard.html", status=status, events=events[:15], kinds=sorted(kinds.items()),
        today_total=len(events), chart=chart(daily_counts(now)), devices=devices,
        first_steps=first_steps,
    )  # fmt: skip
