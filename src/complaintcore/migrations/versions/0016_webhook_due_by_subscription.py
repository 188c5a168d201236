"""Webhooks: the open deliveries of a subscription in the order the dispatcher sends them.

The dispatcher's claim walks each subscription's due deliveries in (next attempt, alert) order
and stops after the few it may start (webhooks/dispatcher.py); with this index that walk reads
only those few rows, however large the backlog, instead of ranking every open delivery of every
subscription at each claim.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX webhook_deliveries_due_by_subscription"
        " ON webhook_deliveries (subscription_id, next_attempt_at, alert_id)"
        " WHERE status IN ('pending', 'retrying')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX webhook_deliveries_due_by_subscription")
