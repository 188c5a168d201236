"""Statistics: the handling-days histogram summed by calendar year.

A question over whole years (a head office's year, the regulator's annual figures) reads the
yearly rows instead of twelve months' (projections/statistics/buckets.py). Filled here from the
monthly histogram, so no rebuild is needed. A statistics rebuild in progress is started afresh (its
tables are made when it starts, and it would not make this one), as migration 0013 did.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE statistics_handling_days_yearly (
            institution   text    NOT NULL,
            year          date    NOT NULL,
            dimension     text    NOT NULL,
            key           text    NOT NULL,
            handling_days integer NOT NULL,
            cases         bigint  NOT NULL,
            PRIMARY KEY (year, institution, dimension, key, handling_days)
        )
        """
    )
    op.execute(
        """
        INSERT INTO statistics_handling_days_yearly
        SELECT institution, date_trunc('year', month)::date, dimension, key, handling_days,
               sum(cases)
        FROM statistics_handling_days
        GROUP BY 1, 2, 3, 4, 5
        HAVING sum(cases) <> 0
        """
    )
    op.execute("ANALYZE statistics_handling_days_yearly")  # planned for its rows from the start
    op.execute("DELETE FROM projection_rebuilds WHERE name = 'statistics'")
    for table in (
        "case_statistics",
        "statistics_monthly",
        "statistics_handling_days",
        "statistics_pause_spans",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}_rebuild")


def downgrade() -> None:
    op.execute("DROP TABLE statistics_handling_days_yearly")
