"""foundation: users, templates, events, devices, outbox

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-25 23:20:35.198912
"""

import sqlalchemy as sa
from alembic import op

import appliance.store.models

revision = "0001_foundation"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "access_events",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("ts", appliance.store.models.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("user_number", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("distance", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("snapshot_path", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("access_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_events_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_events_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_events_ts"), ["ts"], unique=False)

    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("created_at", appliance.store.models.UTCDateTime(), nullable=False),
        sa.Column("last_seen", appliance.store.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("pin_hash", sa.String(length=255), nullable=False),
        sa.Column("duress_pin_hash", sa.String(length=255), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("valid_from", appliance.store.models.UTCDateTime(), nullable=True),
        sa.Column("valid_until", appliance.store.models.UTCDateTime(), nullable=True),
        sa.Column("created_at", appliance.store.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", appliance.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_number"), ["number"], unique=True)

    op.create_table(
        "face_templates",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.LargeBinary(), nullable=False),
        sa.Column("quality", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=True),
        sa.Column("created_at", appliance.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("face_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_face_templates_user_id"), ["user_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("created_at", appliance.store.models.UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("user_number", sa.Integer(), nullable=True),
        sa.Column("distance", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("snapshot_path", sa.String(length=255), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", appliance.store.models.UTCDateTime(), nullable=True),
        sa.Column("delivered_at", appliance.store.models.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["access_events.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_state_next", ["state", "next_attempt_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_state_next")

    op.drop_table("outbox")
    with op.batch_alter_table("face_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_face_templates_user_id"))

    op.drop_table("face_templates")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_number"))

    op.drop_table("users")
    op.drop_table("devices")
    with op.batch_alter_table("access_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_events_ts"))
        batch_op.drop_index(batch_op.f("ix_access_events_kind"))
        batch_op.drop_index(batch_op.f("ix_access_events_device_id"))

    op.drop_table("access_events")
