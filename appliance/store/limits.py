"""Owns the per-user template limit of every ORM write: a user has at most MAX_TEMPLATES.

Enrollment (CLI and admin page) refuses more photos with a clear message before it gets here;
this is the guard for every other writer of the central database through the ORM (a script,
a future API), so no path can store a sixth template. The door's replica is written by sync
with Core statements, never through this check: it mirrors what the central database holds.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from .models import FaceTemplate

MAX_TEMPLATES = 5


class TemplateLimitError(ValueError):
    """A write would give a user more than MAX_TEMPLATES face templates."""


@event.listens_for(Session, "before_flush")
def _check_template_count(session: Session, _ctx: Any, _instances: Any) -> None:
    new = [o for o in session.new if isinstance(o, FaceTemplate)]
    if not new:
        return
    gone = Counter(o.user_id for o in session.deleted if isinstance(o, FaceTemplate) and o.user_id)
    stored: Counter[int] = Counter()
    pending: Counter[int] = Counter()  # templates of users not yet flushed (no id)
    for t in new:
        if t.user_id is not None:
            stored[t.user_id] += 1
        elif t.user is not None and t.user.id is not None:
            stored[t.user.id] += 1
        else:
            pending[id(t.user)] += 1
    for n in pending.values():
        if n > MAX_TEMPLATES:
            raise TemplateLimitError(
                f"a new user with {n} face templates: at most {MAX_TEMPLATES} per user"
            )
    if not stored:
        return
    with session.no_autoflush:
        have = dict(
            session.execute(
                select(FaceTemplate.user_id, func.count(FaceTemplate.id))
                .where(FaceTemplate.user_id.in_(list(stored)))
                .group_by(FaceTemplate.user_id)
            ).all()
        )
    for uid, n in stored.items():
        total = int(have.get(uid, 0)) + n - gone.get(uid, 0)
        if total > MAX_TEMPLATES:
            raise TemplateLimitError(
                f"user id {uid} would have {total} face templates: at most {MAX_TEMPLATES}"
            )
