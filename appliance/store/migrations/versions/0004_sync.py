"""sync: change sequence, tombstones, version columns, access rules, event push marks

Revision ID: 0004_sync
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import appliance.store.models

revision = "0004_sync"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    seq = op.create_table(
        "sync_seq",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sync_tombstones",
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("table_name", sa.String(length=32), nullable=False),
        sa.Column("row_id", sa.Integer(), nullable=False),
        sa.Column("deleted_at", appliance.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.create_table(
        "sync_state",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "user_access",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("weekdays", sa.Integer(), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("end_minute", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("weekdays >= 1 AND weekdays <= 127", name="ck_user_access_weekdays"),
        sa.CheckConstraint(
            "start_minute >= 0 AND start_minute < 1440 AND end_minute > 0 "
            "AND end_minute <= 1440 AND start_minute <> end_minute",
            name="ck_user_access_minutes",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_user_access_user_id", "user_access", ["user_id"])
    op.create_index("ix_user_access_version", "user_access", ["version"])

    # existing rows get change numbers 1..n so that a first sync copies them
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.create_index("ix_users_version", ["version"], unique=False)
    with op.batch_alter_table("face_templates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("version", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.create_index("ix_face_templates_version", ["version"], unique=False)
    with op.batch_alter_table("access_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("synced_at", appliance.store.models.UTCDateTime(), nullable=True)
        )
        batch_op.create_index("ix_access_events_synced_at", ["synced_at"], unique=False)
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_sync_at", appliance.store.models.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("pending_events", sa.Integer(), nullable=False, server_default="0")
        )

    conn = op.get_bind()
    users = sa.table("users", sa.column("id", sa.Integer), sa.column("version", sa.BigInteger))
    templates = sa.table(
        "face_templates", sa.column("id", sa.Integer), sa.column("version", sa.BigInteger)
    )
    last = 0
    for table in (users, templates):
        ids = [r[0] for r in conn.execute(sa.select(table.c.id).order_by(table.c.id))]
        for row_id in ids:
            last += 1
            conn.execute(sa.update(table).where(table.c.id == row_id).values(version=last))
    op.bulk_insert(seq, [{"id": 1, "value": last}])


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("pending_events")
        batch_op.drop_column("last_sync_at")
    with op.batch_alter_table("access_events", schema=None) as batch_op:
        batch_op.drop_index("ix_access_events_synced_at")
        batch_op.drop_column("synced_at")
    with op.batch_alter_table("face_templates", schema=None) as batch_op:
        batch_op.drop_index("ix_face_templates_version")
        batch_op.drop_column("version")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_version")
        batch_op.drop_column("version")
    op.drop_index("ix_user_access_version", table_name="user_access")
    op.drop_index("ix_user_access_user_id", table_name="user_access")
    op.drop_table("user_access")
    op.drop_table("sync_state")
    op.drop_table("sync_tombstones")
    op.drop_table("sync_seq")
