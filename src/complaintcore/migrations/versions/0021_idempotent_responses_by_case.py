"""Stored responses found by their case: an erasure blanks the personal fields of every response
stored for the case (`application.idempotency.erase_stored_responses`), which an index on the
case document's id lets it find without reading the whole table.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX idempotent_requests_case ON idempotent_requests ((response_body->>'id'))"
    )


def downgrade() -> None:
    op.execute("DROP INDEX idempotent_requests_case")
