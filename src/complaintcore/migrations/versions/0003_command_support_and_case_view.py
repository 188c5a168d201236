"""Registration serials, idempotent request replay and the case-state projection.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per institution and month; incremented inside the receipt's transaction, so a
    # rolled-back receipt gives its serial back and concurrent receipts queue on the row lock.
    op.execute(
        """
        CREATE TABLE registration_serials (
            institution text    NOT NULL,
            month       char(6) NOT NULL,
            last_serial integer NOT NULL,
            PRIMARY KEY (institution, month)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE idempotent_requests (
            principal_id    text        NOT NULL,
            idempotency_key text        NOT NULL,
            request_hash    char(64)    NOT NULL,
            status_code     integer     NOT NULL,
            response_body   jsonb       NOT NULL,
            response_headers jsonb      NOT NULL,
            created_at      timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (principal_id, idempotency_key)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE case_view (
            case_id                text PRIMARY KEY,
            registration_no        text        NOT NULL UNIQUE,
            version                integer     NOT NULL,
            status                 text        NOT NULL,
            respondent_institution text        NOT NULL,
            handler_id             text,
            channel                text        NOT NULL,
            category_business      text        NOT NULL,
            category_reason        text        NOT NULL,
            major                  boolean     NOT NULL,
            received_on            date        NOT NULL,
            last_business_date     date        NOT NULL,
            due_on                 date        NOT NULL,
            level                  smallint    NOT NULL,
            paused_days            integer     NOT NULL,
            paused_since           date,
            clock_stopped_on       date,
            decided_on             date,
            outcome                text,
            on_time                boolean,
            review_requested_on    date,
            review_due_on          date,
            review_decided_on      date,
            review_window_ends_on  date,
            merged_into            text,
            complainant            jsonb       NOT NULL
        )
        """
    )
    op.execute(
        "CREATE INDEX case_view_institution_received"
        " ON case_view (respondent_institution, received_on DESC, case_id)"
    )
    op.execute("CREATE INDEX case_view_received ON case_view (received_on DESC, case_id)")
    # The deadline queries: open handling clocks by due date, and open reviews by theirs.
    op.execute(
        "CREATE INDEX case_view_open_clock_due ON case_view (due_on, respondent_institution)"
        " WHERE clock_stopped_on IS NULL"
    )
    op.execute(
        "CREATE INDEX case_view_open_review_due"
        " ON case_view (review_due_on, respondent_institution)"
        " WHERE review_due_on IS NOT NULL AND review_decided_on IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP TABLE case_view")
    op.execute("DROP TABLE idempotent_requests")
    op.execute("DROP TABLE registration_serials")
