"""Owns the events timeline: filters, snapshots, CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, abort, render_template, request, send_file
from sqlalchemy import func, select

from appliance.store.models import AccessEvent, Device

from .common import PAGE_SIZE, file_in, fmt_dt, get_config, get_db, page_arg, parse_local_dt

bp = Blueprint("events", __name__)

CSV_COLUMNS = ("time_utc", "device", "kind", "user_number", "distance", "reason", "snapshot", "id")


class FilterError(ValueError):
    pass


def _filters() -> tuple[list[Any], dict[str, str]]:
    a = request.args
    f = {k: a.get(k, "").strip()[:64] for k in ("kind", "user", "from", "to", "door")}
    cond: list[Any] = []
    if f["kind"]:
        cond.append(AccessEvent.kind == f["kind"])
    if f["user"]:
        if not f["user"].isdigit():
            raise FilterError("user must be a user number")
        cond.append(AccessEvent.user_number == int(f["user"]))
    if f["door"]:
        cond.append(AccessEvent.device_id == f["door"])
    start = parse_local_dt(f["from"], "from")
    end = parse_local_dt(f["to"], "to")
    if start:
        cond.append(AccessEvent.ts >= start)
    if end:
        if len(f["to"]) == 10:  # a date: the whole day
            end += timedelta(days=1)
        cond.append(AccessEvent.ts < end)
    return cond, f


@bp.get("/events")
def index() -> Any:
    page = page_arg()
    try:
        cond, f = _filters()
        error = None
    except (FilterError, ValueError) as exc:
        cond, f, error = [], {}, str(exc)
    with get_db().session() as s:
        total = s.scalar(select(func.count(AccessEvent.id)).where(*cond)) or 0
        events = list(
            s.scalars(
                select(AccessEvent)
                .where(*cond)
                .order_by(AccessEvent.ts.desc())
                .limit(PAGE_SIZE)
                .offset((page - 1) * PAGE_SIZE)
            )
        )
        kinds = sorted(s.scalars(select(AccessEvent.kind).distinct()))
        # every door that has events or is registered, with its name where it has one
        names = dict(s.execute(select(Device.id, Device.name)).all())
        ids = set(s.scalars(select(AccessEvent.device_id).distinct())) | set(names)
        doors = [(d, names.get(d) or d) for d in sorted(ids)]
    pages = max(1, -(-total // PAGE_SIZE))
    args = {k: v for k, v in f.items() if v}
    return render_template(
        "events.html", events=events, f=f, args=args, kinds=kinds, doors=doors, page=page,
        pages=pages, total=total, error=error,
    ), 400 if error else 200  # fmt: skip


@bp.get("/events.csv")
def export_csv() -> Any:
    try:
        cond, _ = _filters()
    except (FilterError, ValueError) as exc:
        abort(400, str(exc))
    db = get_db()

    def rows() -> Iterator[str]:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_COLUMNS)
        with db.session() as s:
            q = select(AccessEvent).where(*cond).order_by(AccessEvent.ts.desc())
            for e in s.scalars(q.execution_options(yield_per=500)):
                w.writerow(
                    [
                        fmt_dt(e.ts, with_seconds=True),
                        _cell(e.device_id),
                        _cell(e.kind),
                        "" if e.user_number is None else e.user_number,
                        "" if e.distance is None else f"{e.distance:.4f}",
                        _cell(e.reason),
                        _cell(e.snapshot_path),
                        _cell(e.id),
                    ]
                )
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()

    return Response(
        rows(),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="doorward-events.csv"'},
    )


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")


def _cell(value: object) -> str:
    """Neutralise spreadsheet formulas (OWASP CSV injection): every text cell that a
    spreadsheet could read as a formula gets a leading apostrophe."""
    v = "" if value is None else str(value)
    return "'" + v if v.startswith(FORMULA_PREFIXES) else v


@bp.get("/snapshots/<path:rel>")
def snapshot(rel: str) -> Any:
    # contained in the snapshot folder itself, not merely in data_dir (enrollment photos are there)
    path = file_in(get_config().snapshot_dir, rel, ".jpg")
    return send_file(path, mimetype="image/jpeg", max_age=0)  # private: auth._headers
