"""Owns the alerts tables: per-channel delivery state of each outbox alert."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, UTCDateTime, utcnow

# delivery states: pending -> delivered | suppressed (hourly cap) | failed (given up)
DELIVERY_STATES = ("pending", "delivered", "suppressed", "failed")


class AlertDelivery(Base):
    """One logical channel (mailbox, email, sms) of one outbox alert."""

    __tablename__ = "alert_deliveries"

    alert_id: Mapped[str] = mapped_column(
        ForeignKey("outbox.id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    first_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # which transport took it and its reference, e.g. "twilio:SM123" or "gsm:17"
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # SMS numbers (number_key, comma-separated) an attempt that failed for other recipients
    # already reached: a retry, after a restart too, does not text them again
    reached: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("ix_alert_deliveries_state_next", "state", "next_attempt_at"),
        Index("ix_alert_deliveries_channel_delivered", "channel", "delivered_at"),
    )
