"""Statistics: the rectification actions that keep their status whatever the day are counted in
the buckets, so a head office's year no longer judges every action of the year one by one.

The facts rows gain `actions_closed`, `actions_not_closed` and `actions_settle_on` (the first
day from which the closed ones are closed and the others overdue for good); the monthly and
yearly buckets count the first two on the attribution's date. A question judges one by one only
the cases that settle after its day, which the new index finds (projections/statistics/
dating.py, query_sql.py). The index of the cases with actions by attribution date goes: nothing
reads the actions that way any more.

As 0013 did, the statistics are written again: their tables are emptied and the runner applies
the feed from the start (the facts rows and buckets are a function of the events), and a
statistics rebuild in progress starts afresh with the new columns.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

_COUNTS = ("actions_closed", "actions_not_closed")
_TABLES = (
    "case_statistics",
    "statistics_monthly",
    "statistics_handling_days",
    "statistics_pause_spans",
    "statistics_handling_days_yearly",
    "statistics_yearly",
)


def upgrade() -> None:
    op.execute(
        "ALTER TABLE case_statistics ADD COLUMN actions_closed integer NOT NULL DEFAULT 0,"
        " ADD COLUMN actions_not_closed integer NOT NULL DEFAULT 0,"
        " ADD COLUMN actions_settle_on date"
    )
    for table in ("statistics_monthly", "statistics_yearly"):
        op.execute(
            f"ALTER TABLE {table} "
            + ", ".join(f"ADD COLUMN {name} bigint NOT NULL DEFAULT 0" for name in _COUNTS)
        )
    op.execute("DROP INDEX case_statistics_actions")
    op.execute(
        "CREATE INDEX case_statistics_actions_settle ON case_statistics"
        " (actions_settle_on, respondent_institution) WHERE actions_settle_on IS NOT NULL"
    )
    op.execute(f"TRUNCATE {', '.join(_TABLES)}")
    op.execute("UPDATE projection_checkpoints SET position = 0 WHERE name = 'statistics'")
    op.execute("DELETE FROM projection_rebuilds WHERE name = 'statistics'")
    for table in _TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table}_rebuild")


def downgrade() -> None:
    op.execute("DROP INDEX case_statistics_actions_settle")
    op.execute(
        "CREATE INDEX case_statistics_actions ON case_statistics"
        " (respondent_institution, attributed_on) WHERE cardinality(action_due_on) > 0"
    )
    for table in ("statistics_monthly", "statistics_yearly"):
        op.execute(f"ALTER TABLE {table} " + ", ".join(f"DROP COLUMN {name}" for name in _COUNTS))
    op.execute(
        "ALTER TABLE case_statistics DROP COLUMN actions_closed, DROP COLUMN actions_not_closed,"
        " DROP COLUMN actions_settle_on"
    )
