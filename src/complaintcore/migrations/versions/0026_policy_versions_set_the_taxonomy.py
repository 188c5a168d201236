"""A policy version may set the taxonomy (DOMAIN.md "Taxonomy": configurable reference data,
per institution): the business types and causes complaints are filed under from its day on,
each with a stable code and a Chinese and an English label. NULL: inherited, as every value of a
version. The rows stay append-only (0012's trigger).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE institution_policy_versions ADD COLUMN taxonomy jsonb
            CHECK (taxonomy IS NULL OR jsonb_typeof(taxonomy) = 'object')
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE institution_policy_versions DROP COLUMN taxonomy")
