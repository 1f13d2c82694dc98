"""Owns the access-policy tables: guest codes, their uses, door schedules and holidays.

Synced down (version-stamped like users, see models_sync): guest_codes, schedule_windows,
holidays. Pushed up (by UUID, like access events): guest_uses. Door-local only:
guest_use_totals (the uses of each code that the replica does not hold, as of the last sync
round: other doors' uses, and this door's own from before its replica was rebuilt).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, UTCDateTime, utcnow

GUEST_KINDS = ("code", "offline")


class GuestCode(Base):
    """A guest or service code.

    kind "code": typed as 0*<slot><secret>#; `slot` (4 digits, unique among live codes) finds
    the row, `code_hash` (argon2id of HMAC(pepper, all 10 digits), like a PIN) proves it.
    kind "offline": typed as 00*<10 digits>#, signed with one door's key (core.offline); the
    row only records what was issued (serial, days) so that it can be listed and revoked.
    """

    __tablename__ = "guest_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="code")
    slot: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    code_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # device ids the code opens; None = every door
    doors: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # optional weekly windows [[weekdays mask, start minute, end minute], ...] (door local time)
    windows: Mapped[list[list[int]] | None] = mapped_column(JSON, nullable=True)
    max_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    serial: Mapped[int | None] = mapped_column(Integer, nullable=True)
    first_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    version: Mapped[int] = mapped_column(BigInteger, default=0, index=True)

    __table_args__ = (
        CheckConstraint("max_uses IS NULL OR max_uses >= 1", name="ck_guest_codes_max_uses"),
    )

    def opens(self, device_id: str) -> bool:
        return self.doors is None or device_id in self.doors

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "doors": self.doors,
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "windows": self.windows,
            "max_uses": self.max_uses,
            "serial": self.serial,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "created_by": self.created_by,
        }


class GuestUse(Base):
    """One use of a guest code at one door, written with its guest_entry event."""

    __tablename__ = "guest_uses"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    guest_code_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    device_id: Mapped[str] = mapped_column(String(64), index=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    offline_serial: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # on a door: pushed to the central database / counted by a refresh after that push
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class GuestUseTotal(Base):
    """Door-local: the central database's uses of a code at the last sync round that this
    replica does not hold (other doors' uses; and this door's own from before a rebuild of its
    replica). The replica's own guest_uses rows count the rest, so no use counts twice."""

    __tablename__ = "guest_use_totals"

    guest_code_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    others: Mapped[int] = mapped_column(Integer, default=0)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScheduleWindow(Base):
    """A weekly free-unlock window of a door (None = every door); several per day allowed."""

    __tablename__ = "schedule_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    label: Mapped[str] = mapped_column(String(64), default="")
    weekdays: Mapped[int] = mapped_column(Integer, default=0b0011111)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    first_person_in: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0, index=True)

    __table_args__ = (
        CheckConstraint("weekdays >= 1 AND weekdays <= 127", name="ck_schedule_weekdays"),
        CheckConstraint(
            "start_minute >= 0 AND start_minute < 1440 AND end_minute > 0 "
            "AND end_minute <= 1440 AND start_minute <> end_minute",
            name="ck_schedule_minutes",
        ),
    )


class Holiday(Base):
    """A date on which the weekly schedule does not open the door (None = every door)."""

    __tablename__ = "holidays"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    device_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0, index=True)


# writes to these get change numbers like users do (and so reach the doors by sync)
from .models_sync import register_synced  # noqa: E402

register_synced(GuestCode, ScheduleWindow, Holiday)
