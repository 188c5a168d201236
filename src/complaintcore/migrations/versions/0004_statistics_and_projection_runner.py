"""Per-branch statistics facts, projection checkpoints and rebuild progress.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Each statistics figure reads the rows whose own date falls in the asked range, per
# institution: one index per figure date, partial where most cases have no such date.
_FIGURE_DATE_INDEXES = (
    ("decided", "decided_on"),
    ("withdrawn", "withdrawn_on"),
    ("declined", "declined_on"),
    ("merged", "merged_on"),
    ("first_extended", "first_extended_on"),
    ("second_extended", "second_extended_on"),
    ("review_requested", "review_requested_on"),
    ("review_decided", "review_decided_on"),
)


def upgrade() -> None:
    # One row per case, a pure function of its folded state (projections/statistics/facts.py).
    op.execute(
        """
        CREATE TABLE case_statistics (
            case_id                text PRIMARY KEY,
            version                integer  NOT NULL,
            respondent_institution text     NOT NULL,
            channel                text     NOT NULL,
            category_business      text     NOT NULL,
            category_reason        text     NOT NULL,
            major                  boolean  NOT NULL,
            status                 text     NOT NULL,
            received_on            date     NOT NULL,
            due_on                 date     NOT NULL,
            paused_now             boolean  NOT NULL,
            clock_stopped_on       date,
            decided_on             date,
            decision_outcome       text,
            final_outcome          text,
            on_time                boolean,
            handling_days          integer,
            redress_fen            bigint,
            first_extended_on      date,
            second_extended_on     date,
            pause_dates            date[]   NOT NULL,
            review_requested_on    date,
            review_due_on          date,
            review_decided_on      date,
            review_changed         boolean,
            review_window_ends_on  date,
            withdrawn_on           date,
            declined_on            date,
            merged_on              date
        )
        """
    )
    op.execute(
        "CREATE INDEX case_statistics_received ON case_statistics"
        " (respondent_institution, received_on)"
    )
    for name, column in _FIGURE_DATE_INDEXES:
        op.execute(
            f"CREATE INDEX case_statistics_{name} ON case_statistics"
            f" (respondent_institution, {column}) WHERE {column} IS NOT NULL"
        )
    op.execute(
        "CREATE INDEX case_statistics_paused ON case_statistics (respondent_institution)"
        " WHERE cardinality(pause_dates) > 0"
    )
    # The last feed position a lagging projection has applied, written in the same transaction
    # as its rows (projections/runner.py).
    op.execute(
        """
        CREATE TABLE projection_checkpoints (
            name       text PRIMARY KEY,
            position   bigint      NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("INSERT INTO projection_checkpoints (name, position) VALUES ('statistics', 0)")
    # A batch rebuild in progress, so an interrupted one resumes (projections/rebuild/).
    op.execute(
        """
        CREATE TABLE projection_rebuilds (
            name            text PRIMARY KEY,
            building_table  text        NOT NULL,
            phase           text        NOT NULL,
            start_position  bigint      NOT NULL,
            caught_up_to    bigint      NOT NULL,
            last_stream_id  text,
            events_done     bigint      NOT NULL DEFAULT 0,
            events_total    bigint      NOT NULL,
            started_at      timestamptz NOT NULL DEFAULT now(),
            updated_at      timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE projection_rebuilds")
    op.execute("DROP TABLE projection_checkpoints")
    op.execute("DROP TABLE case_statistics")
