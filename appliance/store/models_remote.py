"""Owns the remote-control tables: who may command the door from outside (MQTT integrations,
SMS owner numbers) and the one-time codes already used (so a replay does nothing)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, UTCDateTime, utcnow

PRINCIPAL_KINDS = ("integration", "owner")


class RemotePrincipal(Base):
    """An MQTT integration (e.g. "home-assistant") or an SMS owner (a phone number).

    `label` is random; the TOTP/HMAC secret is derived from it under the device pepper
    (PinHasher.derive), so this row alone reveals no secret. `last_step` is the last TOTP
    time step accepted: a code of that step or an earlier one is a replay.
    """

    __tablename__ = "remote_principals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    label: Mapped[str] = mapped_column(String(64))
    may_unlock: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RemoteNonce(Base):
    """A nonce of a signed (HMAC) command already accepted; kept until its timestamp is
    outside the accepted skew, so the same signed message can never act twice."""

    __tablename__ = "remote_nonces"

    principal_id: Mapped[int] = mapped_column(
        ForeignKey("remote_principals.id", ondelete="CASCADE"), primary_key=True
    )
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
