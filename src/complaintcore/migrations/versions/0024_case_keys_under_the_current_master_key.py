"""A new case key is refused unless it is wrapped under the master key the service keys are under:
`keys rotate` moves the service keys first, in one transaction, so from then on their key id is
the current master key. A process still holding the old key (a host not restarted yet) went on
wrapping new cases' keys under it after the rotation reported every key moved (found by a review
pass): once the old key file was retired, those cases could not be read. Its receipts are now
refused (`events.case_keys.RETIRED_MASTER_KEY`, answered 503 `master_key_rotated`), and a
rotation that reports done stays done. A receipt in flight as the service keys move commits its
key under the old id; the rotation waits for it and re-wraps it (`CaseKeys._none_left`).

A statement trigger: a bulk import inserts a batch of keys in one statement, checked once.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

# events.case_keys.RETIRED_MASTER_KEY, as it was written (a migration keeps its values)
_SQLSTATE = "CCK01"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION refuse_case_keys_under_a_retired_master_key() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            refused record;
        BEGIN
            SELECT n.key_id AS wrapped_under, s.key_id AS current INTO refused
            FROM new_case_keys AS n JOIN service_keys AS s ON s.key_id <> n.key_id
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'case key wrapped under master key %, but the current one is %',
                    refused.wrapped_under, refused.current
                    USING ERRCODE = '{_SQLSTATE}';
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER case_keys_under_the_current_master_key
        AFTER INSERT ON case_keys REFERENCING NEW TABLE AS new_case_keys
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_case_keys_under_a_retired_master_key()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER case_keys_under_the_current_master_key ON case_keys")
    op.execute("DROP FUNCTION refuse_case_keys_under_a_retired_master_key()")
