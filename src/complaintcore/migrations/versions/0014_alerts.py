"""Alerts (issue 15, DOMAIN.md "Alerts and escalation"): the append-only `alerts` the webhooks
deliver, the clocks the alert runner judges, and its checkpoint (projections/alerts/).

- `alerts`: one row per alert, inserted only by the one active alert runner, each in the
  transaction that moves its checkpoint, so rows commit in id order; `dedupe_key` makes each
  alert once per case and state. Masked data only. Never updated or deleted (trigger).
- `alert_clocks`: per case its handling clock, its review's clock and each rectification action
  of its current attribution, as the folded case last had them; `running` rows (the ones some
  day may still find due soon or overdue) by due date, so the day's sweep is one index range.
- `alert_runner`: from which feed position on the events raise case alerts: the head at this
  migration, so a deployment with a history does not announce every past receipt (its open
  clocks are still judged once the runner has folded them).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE alerts (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event           text        NOT NULL,
            case_id         text        NOT NULL,
            institution     text        NOT NULL,
            registration_no text        NOT NULL,
            occurred_at     timestamptz NOT NULL,
            data            jsonb       NOT NULL,
            dedupe_key      text        NOT NULL UNIQUE
        )
        """
    )
    op.execute(
        """
        CREATE FUNCTION refuse_alert_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'alerts are append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER alerts_refuse_update_delete BEFORE UPDATE OR DELETE ON alerts"
        " FOR EACH ROW EXECUTE FUNCTION refuse_alert_change()"
    )
    op.execute(
        "CREATE TRIGGER alerts_refuse_truncate BEFORE TRUNCATE ON alerts"
        " FOR EACH STATEMENT EXECUTE FUNCTION refuse_alert_change()"
    )
    op.execute(
        """
        CREATE TABLE alert_clocks (
            case_id         text    NOT NULL,
            clock           text    NOT NULL,
            action_id       text    NOT NULL DEFAULT '',
            institution     text    NOT NULL,
            registration_no text    NOT NULL,
            state           text    NOT NULL,
            due_on          date    NOT NULL,
            closed_on       date,
            PRIMARY KEY (case_id, clock, action_id)
        )
        """
    )
    op.execute("CREATE INDEX alert_clocks_running ON alert_clocks (due_on) WHERE state = 'running'")
    op.execute(
        """
        CREATE TABLE alert_runner (
            name              text PRIMARY KEY,
            case_alerts_after bigint NOT NULL,
            swept_on          date,
            swept_at          timestamptz
        )
        """
    )
    op.execute(
        "INSERT INTO alert_runner (name, case_alerts_after)"
        " SELECT 'alerts', coalesce(max(position), 0) FROM events"
    )
    op.execute("INSERT INTO projection_checkpoints (name, position) VALUES ('alerts', 0)")


def downgrade() -> None:
    op.execute("DELETE FROM projection_checkpoints WHERE name = 'alerts'")
    op.execute("DROP TABLE alert_runner")
    op.execute("DROP TABLE alert_clocks")
    op.execute("DROP TABLE alerts")
    op.execute("DROP FUNCTION refuse_alert_change()")
