"""An erasure reaches the rows of a case view rebuild left part-way: `projections rebuild` writes
`case_view_rebuild` and swaps it in at its end, and a rebuild stopped before the swap (a crash,
Ctrl-C) leaves that table, resumable. Its rows held the masked complainant and blind index of
cases erased since (DOMAIN.md "Personal data": erased everywhere, rebuilt projections and the
blind index included). `forget_rebuilding_case_views` deletes the erased cases' rows from it when
it exists, in the erasure's transaction (`projections.case_view.forget_rebuilding_rows`); a
resumed rebuild's catch-up writes them again, as erased.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # dynamic SQL: the table exists only while a rebuild is under way or left part-way; dropped
    # between the check and the delete (a rebuild --restart), there is nothing left to forget
    op.execute(
        """
        CREATE FUNCTION forget_rebuilding_case_views(case_ids text[]) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN
            IF to_regclass('case_view_rebuild') IS NOT NULL THEN
                EXECUTE 'DELETE FROM case_view_rebuild WHERE case_id = ANY($1)' USING case_ids;
            END IF;
        EXCEPTION WHEN undefined_table THEN
            NULL;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION forget_rebuilding_case_views(text[])")
