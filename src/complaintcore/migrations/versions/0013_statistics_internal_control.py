"""Statistics of internal control (issue 14): the facts rows gain the deciding handler, the staff
a complaint names, the current attribution (date, root cause, responsible unit, whether a third
party, the actions' due and done dates) and the latest follow-up; the monthly buckets gain their
counts (projections/statistics/facts.py, buckets.py).

No event the new columns read predates this revision (attribution and follow-up are new events),
so the facts rows already written hold the right values once defaulted, except `handler_id` and
`respondent_staff`, which the staff figures read: the runner applies the feed again from the
start (it derives the buckets from the facts rows it replaces, so nothing counts twice), and an
interrupted rebuild of the statistics starts over with the new columns.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_FACTS_COLUMNS = (
    ("handler_id", "text"),
    ("respondent_staff", "text[] NOT NULL DEFAULT '{}'"),
    ("attributed_on", "date"),
    ("root_cause", "text"),
    ("responsible_institution", "text"),
    ("third_party", "boolean"),
    ("action_due_on", "date[] NOT NULL DEFAULT '{}'"),
    ("action_closed_on", "date[] NOT NULL DEFAULT '{}'"),
    ("followed_up_on", "date"),
    ("follow_up_reached", "boolean"),
    ("satisfied", "boolean"),
    ("basically_satisfied", "boolean"),
    ("dissatisfied", "boolean"),
)
_MONTHLY_COUNTS = (
    "attributed",
    "third_party",
    "follow_up_reached",
    "satisfied",
    "basically_satisfied",
    "dissatisfied",
)

_TABLES = (
    "case_statistics",
    "statistics_monthly",
    "statistics_handling_days",
    "statistics_pause_spans",
)


def upgrade() -> None:
    op.execute(
        "ALTER TABLE case_statistics "
        + ", ".join(f"ADD COLUMN {name} {kind}" for name, kind in _FACTS_COLUMNS)
    )
    op.execute(
        "ALTER TABLE statistics_monthly "
        + ", ".join(f"ADD COLUMN {name} bigint NOT NULL DEFAULT 0" for name in _MONTHLY_COUNTS)
    )
    # rectification is judged as of today: read from the facts rows of the cases with actions
    op.execute(
        "CREATE INDEX case_statistics_actions ON case_statistics"
        " (respondent_institution, attributed_on) WHERE cardinality(action_due_on) > 0"
    )
    # the staff figures (per handler, by decision date; per respondent staff, by receipt date)
    op.execute(
        "CREATE INDEX case_statistics_handler ON case_statistics"
        " (respondent_institution, decided_on) WHERE handler_id IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX case_statistics_followed_up ON case_statistics"
        " (respondent_institution, followed_up_on) WHERE followed_up_on IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX case_statistics_named_staff ON case_statistics"
        " (respondent_institution, received_on) WHERE cardinality(respondent_staff) > 0"
    )
    op.execute(f"TRUNCATE {', '.join(_TABLES)}")
    op.execute("UPDATE projection_checkpoints SET position = 0 WHERE name = 'statistics'")
    op.execute("DELETE FROM projection_rebuilds WHERE name = 'statistics'")
    for table in _TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table}_rebuild")


def downgrade() -> None:
    for name in ("actions", "handler", "followed_up", "named_staff"):
        op.execute(f"DROP INDEX case_statistics_{name}")
    op.execute(
        "ALTER TABLE statistics_monthly "
        + ", ".join(f"DROP COLUMN {name}" for name in _MONTHLY_COUNTS)
    )
    op.execute(
        "ALTER TABLE case_statistics "
        + ", ".join(f"DROP COLUMN {name}" for name, _ in _FACTS_COLUMNS)
    )
