"""door_state: the door's last reported status, for an admin page in another process

Revision ID: 0005_door_state
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import appliance.store.models

revision = "0005_door_state"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "door_states",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("status_json", sa.Text(), nullable=False),
        sa.Column("reported_at", appliance.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("device_id"),
    )


def downgrade() -> None:
    op.drop_table("door_states")
