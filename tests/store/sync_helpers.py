"""Helpers for the sync tests: CI-aware skip, users and queued events written the app's way."""

from __future__ import annotations

import numpy as np


def random_encoding(rng: np.random.Generator) -> bytes:
    from appliance.store.models import FaceTemplate

    v = rng.normal(size=128)
    return FaceTemplate.pack(v / np.linalg.norm(v) * 0.6)


def add_user(db, number: int, pin_hash: str, *, templates: int = 1, seed: int = 0, **kw) -> int:
    """Insert a user straight into `db` (the ORM stamps change numbers); returns its id."""
    from appliance.store.models import FaceTemplate, User

    rng = np.random.default_rng(seed or number)
    user = User(
        number=number,
        name=kw.pop("name", f"User {number}"),
        pin_hash=pin_hash,
        templates=[
            FaceTemplate(encoding=random_encoding(rng), quality=1.0, source=f"t{i}")
            for i in range(templates)
        ],
        **kw,
    )
    with db.session() as s:
        s.add(user)
    return user.id


def queue_events(replica, device_id: str, n: int, start: int = 0) -> list[str]:
    """Record n events in the replica as the door does (queued: synced_at NULL)."""
    from datetime import timedelta

    from sqlalchemy import insert

    from appliance.store.models import AccessEvent, new_uuid, utcnow

    t0 = utcnow()
    rows = [
        {
            "id": new_uuid(),
            "device_id": device_id,
            "ts": t0 + timedelta(milliseconds=i),
            "kind": "denied_face" if i % 7 == 0 else "granted",
            "user_number": 1 + i % 50,
            "user_id": None,
            "distance": 0.3,
            "reason": None,
            "snapshot_path": f"snapshots/x/{start + i}.jpg" if i % 7 == 0 else None,
            "detail": {"i": start + i},
            "synced_at": None,
        }
        for i in range(n)
    ]
    with replica.engine.begin() as conn:
        conn.execute(insert(AccessEvent.__table__), rows)
    return [r["id"] for r in rows]
