"""Statistics: the monthly counts summed by calendar year.

A question over whole years (a head office's year) reads the yearly rows instead of twelve
months' (projections/statistics/query_sql.py), as the handling-days histogram does since 0018.
Filled here from the monthly counts, so no rebuild is needed; a statistics rebuild in progress is
started afresh (its tables are made when it starts, and it would not make this one), as 0018 did.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# The values kept per bucket, as statistics_monthly has them (0005 and 0013).
_VALUES = (
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
    "attributed",
    "third_party",
    "follow_up_reached",
    "satisfied",
    "basically_satisfied",
    "dissatisfied",
    "redress_fen",
)


def upgrade() -> None:
    columns = ",\n".join(f"{' ' * 12}{value} bigint NOT NULL DEFAULT 0" for value in _VALUES)
    op.execute(
        f"""
        CREATE TABLE statistics_yearly (
            institution text NOT NULL,
            year        date NOT NULL,
            dimension   text NOT NULL,
            key         text NOT NULL,
{columns},
            PRIMARY KEY (year, institution, dimension, key)
        )
        """
    )
    names = ", ".join(_VALUES)
    sums = ", ".join(f"sum({value})" for value in _VALUES)
    op.execute(
        f"""
        INSERT INTO statistics_yearly (institution, year, dimension, key, {names})
        SELECT institution, date_trunc('year', month)::date, dimension, key, {sums}
        FROM statistics_monthly
        GROUP BY 1, 2, 3, 4
        """
    )
    op.execute("ANALYZE statistics_yearly")  # planned for its rows from the start
    op.execute("DELETE FROM projection_rebuilds WHERE name = 'statistics'")
    for table in (
        "case_statistics",
        "statistics_monthly",
        "statistics_handling_days",
        "statistics_pause_spans",
        "statistics_handling_days_yearly",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}_rebuild")


def downgrade() -> None:
    op.execute("DROP TABLE statistics_yearly")
