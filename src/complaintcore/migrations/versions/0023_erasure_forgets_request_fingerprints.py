"""An erasure forgets the fingerprints of the requests whose responses are stored for the case:
`idempotent_requests.request_hash` is a SHA-256 of the request's body, and a receipt's body (a
command's free texts too) held the complainant's personal data, which could be confirmed by
guessing the whole body once erased (DOMAIN.md "Personal data": erased everywhere). The erasure
now replaces them (`application.idempotency.erase_stored_responses`); the requests of the cases
erased before this revision are given the same marker here.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# application.idempotency.ERASED_REQUEST_HASH, as it was written (a migration keeps its values)
_ERASED_REQUEST_HASH = "erased" + "-" * 58


def upgrade() -> None:
    op.execute(
        f"""
        UPDATE idempotent_requests
        SET request_hash = '{_ERASED_REQUEST_HASH}'
        WHERE response_body->>'id' IN (
            SELECT stream_id FROM events WHERE event_type = 'PersonalDataErased')
        """
    )


def downgrade() -> None:
    # the fingerprints are gone for good; a replay before this revision answers 422 for them
    pass
