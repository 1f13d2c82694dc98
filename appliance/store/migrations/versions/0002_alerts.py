"""alerts: per-channel delivery state, incident grouping columns on outbox

Revision ID: 0002_alerts
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import appliance.store.models

revision = "0002_alerts"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("incident_key", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("last_event_at", appliance.store.models.UTCDateTime(), nullable=True)
        )
        batch_op.create_index("ix_outbox_incident", ["incident_key", "created_at"], unique=False)

    op.create_table(
        "alert_deliveries",
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", appliance.store.models.UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", appliance.store.models.UTCDateTime(), nullable=True),
        sa.Column("first_failure_at", appliance.store.models.UTCDateTime(), nullable=True),
        sa.Column("delivered_at", appliance.store.models.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["outbox.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("alert_id", "channel"),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alert_deliveries_state_next", ["state", "next_attempt_at"], unique=False
        )
        batch_op.create_index(
            "ix_alert_deliveries_channel_delivered", ["channel", "delivered_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_deliveries_channel_delivered")
        batch_op.drop_index("ix_alert_deliveries_state_next")
    op.drop_table("alert_deliveries")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_incident")
        batch_op.drop_column("last_event_at")
        batch_op.drop_column("incident_key")
