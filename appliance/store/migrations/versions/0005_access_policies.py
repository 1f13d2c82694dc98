"""access policies: guest codes and their uses, door schedules, holidays

Revision ID: 0005_access_policies
Revises: 0004_sync
"""

import sqlalchemy as sa
from alembic import op

import appliance.store.models

revision = "0005_access_policies"
down_revision = "0004_sync"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guest_codes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=True),
        sa.Column("code_hash", sa.String(length=255), nullable=True),
        sa.Column("doors", sa.JSON(), nullable=True),
        sa.Column("valid_from", appliance.store.models.UTCDateTime(), nullable=True),
        sa.Column("valid_until", appliance.store.models.UTCDateTime(), nullable=True),
        sa.Column("windows", sa.JSON(), nullable=True),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("serial", sa.Integer(), nullable=True),
        sa.Column("first_day", sa.Integer(), nullable=True),
        sa.Column("days", sa.Integer(), nullable=True),
        sa.Column("revoked_at", appliance.store.models.UTCDateTime(), nullable=True),
        sa.Column("created_at", appliance.store.models.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("max_uses IS NULL OR max_uses >= 1", name="ck_guest_codes_max_uses"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("guest_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guest_codes_slot"), ["slot"], unique=False)
        batch_op.create_index(batch_op.f("ix_guest_codes_version"), ["version"], unique=False)

    op.create_table(
        "guest_use_totals",
        sa.Column("guest_code_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("others", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", appliance.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("guest_code_id"),
    )
    op.create_table(
        "guest_uses",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("guest_code_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("ts", appliance.store.models.UTCDateTime(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=True),
        sa.Column("offline_serial", sa.Integer(), nullable=True),
        sa.Column("synced_at", appliance.store.models.UTCDateTime(), nullable=True),
        sa.Column("confirmed_at", appliance.store.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("guest_uses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guest_uses_device_id"), ["device_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_guest_uses_guest_code_id"), ["guest_code_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_guest_uses_synced_at"), ["synced_at"], unique=False)

    op.create_table(
        "holidays",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("holidays", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_holidays_day"), ["day"], unique=False)
        batch_op.create_index(batch_op.f("ix_holidays_version"), ["version"], unique=False)

    op.create_table(
        "schedule_windows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("weekdays", sa.Integer(), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.Column("first_person_in", sa.Boolean(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "start_minute >= 0 AND start_minute < 1440 AND end_minute > 0 AND end_minute <= 1440 AND start_minute <> end_minute",
            name="ck_schedule_minutes",
        ),
        sa.CheckConstraint("weekdays >= 1 AND weekdays <= 127", name="ck_schedule_weekdays"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("schedule_windows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schedule_windows_version"), ["version"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("schedule_windows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schedule_windows_version"))

    op.drop_table("schedule_windows")
    with op.batch_alter_table("holidays", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_holidays_version"))
        batch_op.drop_index(batch_op.f("ix_holidays_day"))

    op.drop_table("holidays")
    with op.batch_alter_table("guest_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guest_uses_synced_at"))
        batch_op.drop_index(batch_op.f("ix_guest_uses_guest_code_id"))
        batch_op.drop_index(batch_op.f("ix_guest_uses_device_id"))

    op.drop_table("guest_uses")
    op.drop_table("guest_use_totals")
    with op.batch_alter_table("guest_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guest_codes_version"))
        batch_op.drop_index(batch_op.f("ix_guest_codes_slot"))

    op.drop_table("guest_codes")
