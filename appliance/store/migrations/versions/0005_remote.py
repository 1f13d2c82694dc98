"""remote control: MQTT integrations and SMS owners, used one-time codes (issue #16)

Revision ID: 0005_remote
Revises: 0001_foundation
"""

import sqlalchemy as sa
from alembic import op

import appliance.store.models

revision = "0005_remote"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "remote_principals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.Column("may_unlock", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", appliance.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("phone"),
    )
    op.create_table(
        "remote_nonces",
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", appliance.store.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["principal_id"], ["remote_principals.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("principal_id", "nonce"),
    )
    op.create_index("ix_remote_nonces_expires_at", "remote_nonces", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_remote_nonces_expires_at", table_name="remote_nonces")
    op.drop_table("remote_nonces")
    op.drop_table("remote_principals")
