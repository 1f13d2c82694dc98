"""Owns the audit trail page: who enrolled, changed or deleted whom, and when."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from sqlalchemy import func, select

from appliance.store.models_admin import AuditEntry

from .common import PAGE_SIZE, get_db, page_arg

bp = Blueprint("audit", __name__)


@bp.get("/audit")
def index() -> Any:
    page = page_arg()
    action = request.args.get("action", "").strip()[:64]
    cond = [AuditEntry.action == action] if action else []
    with get_db().session() as s:
        total = s.scalar(select(func.count(AuditEntry.id)).where(*cond)) or 0
        entries = list(
            s.scalars(
                select(AuditEntry)
                .where(*cond)
                .order_by(AuditEntry.ts.desc(), AuditEntry.id.desc())
                .limit(PAGE_SIZE)
                .offset((page - 1) * PAGE_SIZE)
            )
        )
        actions = sorted(s.scalars(select(AuditEntry.action).distinct()))
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template(
        "audit.html", entries=entries, action=action, actions=actions, page=page, pages=pages
    )
