"""An erasure waits for a case view rebuild's batch in flight: `forget_rebuilding_case_views`
(migration 0022) deleted the erased cases' rows from `case_view_rebuild`, but not a row a scan
was still writing (its COPY uncommitted, or its batch folded from events read before the
erasure and written after it): such a row kept the case's masked complainant and blind index,
and stayed in a rebuild left part-way (found by a review pass). The erasure now locks the table
first, in a mode that waits for a batch in flight and holds the next ones back until it
commits; a batch deletes the rows of cases erased since its scan's position
(`projections.rebuild.scan`), so whichever commits first, the other sees it. The lock conflicts
with itself, so erasures during a rebuild take turns on that table rather than deadlock.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def _forget(lock: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION forget_rebuilding_case_views(case_ids text[]) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            IF to_regclass('case_view_rebuild') IS NOT NULL THEN
                {lock}
                EXECUTE 'DELETE FROM case_view_rebuild WHERE case_id = ANY($1)' USING case_ids;
            END IF;
        EXCEPTION WHEN undefined_table THEN
            NULL;
        END
        $$
        """


def upgrade() -> None:
    op.execute(_forget("EXECUTE 'LOCK TABLE case_view_rebuild IN SHARE ROW EXCLUSIVE MODE';"))


def downgrade() -> None:
    op.execute(_forget(""))
