"""alerts: the SMS recipients a partly failed delivery already reached, kept across restarts

Revision ID: 0006_alert_reached
Revises: 0002_alerts
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_alert_reached"
down_revision = "0002_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reached", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_column("reached")
