"""Stored responses found by their case: an erasure blanks the personal fields of every response
stored for the case (`application.idempotency.erase_stored_responses`), which an index on the
case document's id lets it find without reading the whole table. The responses of the cases
erased before this revision, which kept their masked complainant, are blanked here as an
erasure now does (the complainant's four masked fields null, the case marked erased).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


_ERASED_COMPLAINANT = '{"name": null, "id_type": null, "id_number": null, "contact": null}'


def upgrade() -> None:
    op.execute(
        "CREATE INDEX idempotent_requests_case ON idempotent_requests ((response_body->>'id'))"
    )
    op.execute(
        f"""
        UPDATE idempotent_requests
        SET response_body = response_body || jsonb_build_object(
            'personal_data', 'erased',
            'complainant', response_body->'complainant' || '{_ERASED_COMPLAINANT}'::jsonb)
        WHERE response_body->>'id' IN (
            SELECT stream_id FROM events WHERE event_type = 'PersonalDataErased')
          AND jsonb_typeof(response_body->'complainant') = 'object'
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX idempotent_requests_case")
