"""case_view: an index of the cases merged into another, for the commands that ask who is
barred on the duplicates merged into a case (Art. 17: a duplicate is the same complaint; found
by a review pass, the staff a duplicate named could be assigned the case it was merged into).

Partial: merged cases are few, and the index holds only them. A rebuild builds it on its new
table as it builds the others (projections/rebuild/tables.py reads the live table's indexes).

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX case_view_merged_into ON case_view (merged_into)"
        " WHERE merged_into IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX case_view_merged_into")
