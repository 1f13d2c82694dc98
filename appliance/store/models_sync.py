"""Owns the sync tables (change sequence, tombstones, access rules, sync state) and stamping."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Connection,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from .models import Base, FaceTemplate, User, UTCDateTime, utcnow

log = logging.getLogger(__name__)

ALL_WEEKDAYS = 0b1111111  # bit 0 = Monday ... bit 6 = Sunday
MINUTES_PER_DAY = 1440


class SyncSeq(Base):
    """The central change sequence: one row (id=1) whose value is the last number handed out.

    Every write to a synced table takes the next numbers from this row inside its own
    transaction. The row stays locked until that transaction commits, so change numbers become
    visible in commit order and a reader that has seen number N has seen everything below it.
    """

    __tablename__ = "sync_seq"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class SyncTombstone(Base):
    """A deleted row of a synced table, so that replicas delete it too."""

    __tablename__ = "sync_tombstones"

    version: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    table_name: Mapped[str] = mapped_column(String(32))
    row_id: Mapped[int] = mapped_column(Integer)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class UserAccess(Base):
    """Where and when a user may enter. A user with no rows may use every door at any time.

    With rows, a code is accepted only if one row matches: its door (NULL = every door), its
    weekday (bit 0 = Monday) and minute of the door's local day in [start_minute, end_minute).
    start_minute > end_minute is an overnight window that ends on the next day.
    """

    __tablename__ = "user_access"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    weekdays: Mapped[int] = mapped_column(Integer, default=ALL_WEEKDAYS)
    start_minute: Mapped[int] = mapped_column(Integer, default=0)
    end_minute: Mapped[int] = mapped_column(Integer, default=MINUTES_PER_DAY)
    version: Mapped[int] = mapped_column(BigInteger, default=0, index=True)

    __table_args__ = (
        CheckConstraint("weekdays >= 1 AND weekdays <= 127", name="ck_user_access_weekdays"),
        CheckConstraint(
            "start_minute >= 0 AND start_minute < 1440 AND end_minute > 0 "
            "AND end_minute <= 1440 AND start_minute <> end_minute",
            name="ck_user_access_minutes",
        ),
    )

    def allows(self, device_id: str | None, local: datetime) -> bool:
        return access_allows(
            self.device_id, self.weekdays, self.start_minute, self.end_minute, device_id, local
        )


def access_allows(
    rule_device: str | None,
    weekdays: int,
    start_minute: int,
    end_minute: int,
    device_id: str | None,
    local: datetime,
) -> bool:
    """Whether one access rule admits `device_id` at local wall-clock time `local`."""
    if rule_device is not None and rule_device != device_id:
        return False
    minute = local.hour * 60 + local.minute
    today = local.weekday()
    if start_minute < end_minute:
        return bool(weekdays >> today & 1) and start_minute <= minute < end_minute
    # overnight: the evening part belongs to today, the morning part to yesterday's window
    if minute >= start_minute:
        return bool(weekdays >> today & 1)
    if minute < end_minute:
        return bool(weekdays >> ((today - 1) % 7) & 1)
    return False


class SyncState(Base):
    """Device-local key/value sync state: cursor, last success, last error."""

    __tablename__ = "sync_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")


# ---- change numbers -------------------------------------------------------------------------
# Synced tables in the order a replica must apply a batch (parents first).
# models_policies adds guest codes, schedule windows and holidays (register_synced).
SYNCED_TYPES: tuple[type[Any], ...] = (User, FaceTemplate, UserAccess)


def register_synced(*types: type[Any]) -> None:
    """Add tables whose writes get change numbers (applied after the ones above)."""
    global SYNCED_TYPES
    SYNCED_TYPES = SYNCED_TYPES + tuple(t for t in types if t not in SYNCED_TYPES)


_seq = cast(Table, SyncSeq.__table__)


def allocate_versions(conn: Connection, n: int) -> int:
    """Take `n` change numbers in the caller's transaction; returns the first of them."""
    if n < 1:
        raise ValueError("allocate at least one change number")
    res = conn.execute(update(_seq).where(_seq.c.id == 1).values(value=_seq.c.value + n))
    if res.rowcount == 0:  # a schema built without the migration's seed row
        conn.execute(insert(_seq).values(id=1, value=n))
    last = conn.execute(select(_seq.c.value).where(_seq.c.id == 1)).scalar_one()
    return int(last) - n + 1


@event.listens_for(Session, "before_flush")
def _stamp_versions(session: Session, _ctx: Any, _instances: Any) -> None:
    changed = [o for o in session.new if isinstance(o, SYNCED_TYPES)]
    changed += [
        o
        for o in session.dirty
        if isinstance(o, SYNCED_TYPES) and session.is_modified(o, include_collections=False)
    ]
    deleted = [o for o in session.deleted if isinstance(o, SYNCED_TYPES)]
    if not changed and not deleted:
        return
    changed.sort(key=lambda o: SYNCED_TYPES.index(type(o)))
    first = allocate_versions(session.connection(), len(changed) + len(deleted))
    for i, obj in enumerate(changed):
        obj.version = first + i
    now = utcnow()
    for i, obj in enumerate(deleted, len(changed)):
        session.add(
            SyncTombstone(
                version=first + i, table_name=obj.__tablename__, row_id=obj.id, deleted_at=now
            )
        )


@event.listens_for(Session, "do_orm_execute")
def _stamp_bulk(state: ORMExecuteState) -> Any:
    """ORM bulk UPDATE/DELETE on a synced table: stamp or tombstone every affected row."""
    if not (state.is_update or state.is_delete):
        return None
    mapper = state.bind_mapper
    cls = mapper.class_ if mapper is not None else None
    if cls not in SYNCED_TYPES:
        return None
    session = state.session
    params = state.parameters
    if isinstance(params, list):  # bulk UPDATE by primary key
        ids = [p["id"] for p in params]
    else:
        query = select(cls.id)
        where = state.statement.whereclause  # type: ignore[attr-defined]
        if where is not None:
            query = query.where(where)
        if session.connection().dialect.name in ("mysql", "mariadb"):
            # InnoDB: a plain SELECT reads the transaction's snapshot, but the UPDATE/DELETE
            # below matches rows as last committed. A locking read sees (and locks) exactly the
            # rows it will change, gaps included, so the stamped set is the changed set.
            query = query.with_for_update()
        ids = list(session.execute(query, params or {}).scalars())
    result = state.invoke_statement()
    if ids:
        conn = session.connection()
        first = allocate_versions(conn, len(ids))
        table = cls.__table__
        if state.is_update:
            conn.execute(
                update(table).where(table.c.id == bindparam("row_id")),
                [{"row_id": row_id, "version": first + i} for i, row_id in enumerate(ids)],
            )
        else:
            now = utcnow()
            conn.execute(
                insert(cast(Table, SyncTombstone.__table__)),
                [
                    {
                        "version": first + i,
                        "table_name": cls.__tablename__,
                        "row_id": row_id,
                        "deleted_at": now,
                    }
                    for i, row_id in enumerate(ids)
                ],
            )
    return result


# guest codes, schedule windows and holidays are stamped too: whoever writes users writes them
from . import models_policies  # noqa: E402, F401
