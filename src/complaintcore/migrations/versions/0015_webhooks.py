"""Webhooks (issue 15): subscriptions, the delivery outbox and the fan-out's checkpoint.

- `webhook_subscriptions`: the receiver URL, the institution whose subtree's alerts it gets, the
  alert names (or `*`), the secret sealed under the `webhook-secrets` service key (never in clear,
  see webhooks/signing.py). A deleted subscription keeps its row (`deleted_at`) and its
  deliveries' history; nothing more is sent to it.
- `webhook_deliveries`: one row per (subscription, alert), the body's fields copied from the alert
  when the row is made, so a re-send carries the same `delivery_id` and body. `leased_until` is a
  dispatcher's claim on a delivery being sent (see webhooks/dispatcher.py).
- `webhook_fanout`: the last `alerts.id` turned into deliveries, moved in the same transaction
  as the rows it made.

Reads `alerts` (migration 0014, the alert runner's): `id` identity, written by one writer in id
order.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE webhook_subscriptions (
            id            uuid        PRIMARY KEY,
            url           text        NOT NULL,
            institution   text        NOT NULL REFERENCES institutions (code),
            events        text[]      NOT NULL CHECK (cardinality(events) > 0),
            description   text,
            secret_sealed bytea       NOT NULL,
            created_by    text        NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now(),
            deleted_at    timestamptz
        )
        """
    )
    op.execute(
        "CREATE INDEX webhook_subscriptions_active ON webhook_subscriptions (institution) "
        "WHERE deleted_at IS NULL"
    )
    op.execute(
        """
        CREATE TABLE webhook_deliveries (
            delivery_id      uuid        PRIMARY KEY,
            subscription_id  uuid        NOT NULL REFERENCES webhook_subscriptions (id),
            alert_id         bigint      NOT NULL,
            event            text        NOT NULL,
            case_id          text        NOT NULL,
            institution      text        NOT NULL,
            registration_no  text,
            occurred_at      timestamptz NOT NULL,
            data             jsonb       NOT NULL,
            status           text        NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'retrying', 'delivered', 'failed')),
            attempts         integer     NOT NULL DEFAULT 0,
            last_status_code integer,
            last_error       text,
            first_attempt_at timestamptz,
            next_attempt_at  timestamptz NOT NULL DEFAULT now(),
            leased_until     timestamptz,
            lease_id         uuid,
            delivered_at     timestamptz,
            created_at       timestamptz NOT NULL DEFAULT now(),
            UNIQUE (subscription_id, alert_id)
        )
        """
    )
    # the dispatcher's two questions: what is due, and is an earlier one of the case still open
    op.execute(
        "CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) "
        "WHERE status IN ('pending', 'retrying')"
    )
    op.execute(
        "CREATE INDEX webhook_deliveries_open_by_case "
        "ON webhook_deliveries (subscription_id, case_id, alert_id) "
        "WHERE status IN ('pending', 'retrying')"
    )
    # the deliveries route: one subscription's, newest first
    op.execute(
        "CREATE INDEX webhook_deliveries_by_subscription "
        "ON webhook_deliveries (subscription_id, alert_id DESC)"
    )
    op.execute(
        """
        CREATE TABLE webhook_fanout (
            name       text        PRIMARY KEY,
            position   bigint      NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("INSERT INTO webhook_fanout (name, position) VALUES ('alerts', 0)")


def downgrade() -> None:
    op.execute("DROP TABLE webhook_fanout")
    op.execute("DROP TABLE webhook_deliveries")
    op.execute("DROP TABLE webhook_subscriptions")
