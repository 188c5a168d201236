"""Stored responses scoped to the principal and its institution; institution codes unique
regardless of letter case.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from alembic import op

from complaintcore.infra.migrations import MigrationRefused

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A key is the caller's: the same principal id at two institutions is two callers, so a
    # response stored for one is never replayed to the other ('' stands for no institution).
    op.execute("ALTER TABLE idempotent_requests ADD COLUMN institution text NOT NULL DEFAULT ''")
    # Rows stored before: the institution of the principal when its tokens name only one.
    # A principal id held at two institutions keeps '' and so matches no caller any more: its
    # old keys run afresh rather than answer the wrong bank.
    op.execute(
        """
        UPDATE idempotent_requests AS request
        SET institution = only_one.institution
        FROM (
            SELECT principal_id, min(coalesce(institution, '')) AS institution
            FROM api_tokens
            GROUP BY principal_id
            HAVING count(DISTINCT coalesce(institution, '')) = 1
        ) AS only_one
        WHERE only_one.principal_id = request.principal_id
        """
    )
    op.execute("ALTER TABLE idempotent_requests DROP CONSTRAINT idempotent_requests_pkey")
    op.execute(
        "ALTER TABLE idempotent_requests"
        " ADD PRIMARY KEY (principal_id, institution, idempotency_key)"
    )
    # `br-b` beside `BR-B` would be two nodes a person reads as one (API.md "Conventions").
    _refuse_codes_alike_but_for_case()
    op.execute("CREATE UNIQUE INDEX institutions_code_any_case ON institutions (upper(code))")


def _refuse_codes_alike_but_for_case() -> None:
    """Releases before this one took `br-b` beside `BR-B`: the index below would fail with a
    bare unique violation. Name them, and what to do (found by a review pass)."""
    alike = (
        op.get_bind()
        .exec_driver_sql(
            "SELECT string_agg(code, ' and ' ORDER BY code) FROM institutions"
            " GROUP BY upper(code) HAVING count(*) > 1 ORDER BY 1"
        )
        .scalars()
        .all()
    )
    if alike:
        raise MigrationRefused(
            f"institution codes that differ only in letter case: {'; '.join(alike)}. Since"
            " this revision a code names one institution whatever its case: move each such"
            " pair's cases, children and tokens to one of its codes, remove the other, and"
            " migrate again"
        )


def downgrade() -> None:
    op.execute("DROP INDEX institutions_code_any_case")
    op.execute("ALTER TABLE idempotent_requests DROP CONSTRAINT idempotent_requests_pkey")
    # Of one principal's keys stored at several institutions, one survives the old key.
    op.execute(
        """
        DELETE FROM idempotent_requests AS request
        USING idempotent_requests AS kept
        WHERE kept.principal_id = request.principal_id
          AND kept.idempotency_key = request.idempotency_key
          AND kept.institution < request.institution
        """
    )
    op.execute("ALTER TABLE idempotent_requests DROP COLUMN institution")
    op.execute("ALTER TABLE idempotent_requests ADD PRIMARY KEY (principal_id, idempotency_key)")
