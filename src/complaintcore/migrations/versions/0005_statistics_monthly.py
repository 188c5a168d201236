"""Monthly statistics buckets, and indexes for the figures judged as of today.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The counts kept per bucket, one column each (projections/statistics/buckets.py).
_COUNT_COLUMNS = (
    "received",
    "decided",
    "decided_on_time",
    "decided_late",
    "withdrawn",
    "declined",
    "merged",
    "extended_once",
    "extended_twice",
    "paused",
    "reviews_requested",
    "reviews_changed",
    "major",
)


def upgrade() -> None:
    # Per institution, month and breakdown key (dimension '' with key '': all cases; outcome ''
    # stands for "not decided"), the sums of the facts rows dated in that month: a year's figures
    # of a head office read a few thousand rows instead of every case.
    counts = ",\n".join(
        f"{' ' * 12}{column} bigint NOT NULL DEFAULT 0" for column in _COUNT_COLUMNS
    )
    op.execute(
        f"""
        CREATE TABLE statistics_monthly (
            institution text NOT NULL,
            month       date NOT NULL,
            dimension   text NOT NULL,
            key         text NOT NULL,
{counts},
            redress_fen bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (month, institution, dimension, key)
        )
        """
    )
    # Decided cases per handling-days value: summed histograms give the exact mean and
    # 90th percentile of any union of months.
    op.execute(
        """
        CREATE TABLE statistics_handling_days (
            institution   text    NOT NULL,
            month         date    NOT NULL,
            dimension     text    NOT NULL,
            key           text    NOT NULL,
            handling_days integer NOT NULL,
            cases         bigint  NOT NULL,
            PRIMARY KEY (month, institution, dimension, key, handling_days)
        )
        """
    )
    # Cases paused in `from_month` and next in `to_month` (consecutive months with a pause of
    # theirs): subtracted where both months fall in one period, so a case paused in several
    # months of a period counts once there.
    op.execute(
        """
        CREATE TABLE statistics_pause_spans (
            institution text   NOT NULL,
            from_month  date   NOT NULL,
            to_month    date   NOT NULL,
            dimension   text   NOT NULL,
            key         text   NOT NULL,
            cases       bigint NOT NULL,
            PRIMARY KEY (from_month, to_month, institution, dimension, key)
        )
        """
    )
    # open_now / overdue_now are judged as of today: read from the facts rows of the cases that
    # can still be open only (not decided yet, or decided with the review window not passed).
    op.execute(
        "CREATE INDEX case_statistics_open ON case_statistics (received_on, respondent_institution)"
        " WHERE status IN ('received', 'assigned', 'under_review')"
    )
    op.execute(
        "CREATE INDEX case_statistics_review_window ON case_statistics"
        " (review_window_ends_on, received_on, respondent_institution) WHERE status = 'decided'"
    )
    # Facts written before the buckets existed have no buckets: the runner applies the feed
    # again from the start (it derives the buckets from the facts rows it replaces), and an
    # interrupted rebuild of the statistics starts over with the new tables.
    op.execute("TRUNCATE case_statistics")
    op.execute("UPDATE projection_checkpoints SET position = 0 WHERE name = 'statistics'")
    op.execute("DELETE FROM projection_rebuilds WHERE name = 'statistics'")
    op.execute("DROP TABLE IF EXISTS case_statistics_rebuild")


def downgrade() -> None:
    op.execute("DROP INDEX case_statistics_review_window")
    op.execute("DROP INDEX case_statistics_open")
    op.execute("DROP TABLE statistics_pause_spans")
    op.execute("DROP TABLE statistics_handling_days")
    op.execute("DROP TABLE statistics_monthly")
