"""A new key is refused unless it is wrapped under the master key the service keys are under:
`keys rotate` moves the service keys first, in one transaction, so from then on their key id is
the current master key. A process still holding the old key (a host not restarted yet) went on
wrapping new cases' keys under it after the rotation reported every key moved (found by a review
pass): once the old key file was retired, those cases could not be read. Its receipts are now
refused (`events.case_keys.RETIRED_MASTER_KEY`, answered 503 `master_key_rotated`), and a
rotation that reports done stays done. A receipt in flight as the service keys move commits its
key under the old id; the rotation waits for it and re-wraps it (`CaseKeys._none_left`).

A new service key the same (the webhook secrets' key is made when first needed): one made by a
process on the old key after a rotation left the service keys under two ids, and then every
process's receipts were refused (found by the review of this change).

Statement triggers: a bulk import inserts a batch of keys in one statement, checked once.

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
_TABLES = ("case_keys", "service_keys")


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION refuse_keys_under_a_retired_master_key() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            refused record;
        BEGIN
            SELECT n.key_id AS wrapped_under, s.key_id AS current INTO refused
            FROM new_keys AS n JOIN service_keys AS s ON s.key_id <> n.key_id
            LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION '% wrapped under master key %, but the current one is %',
                    TG_TABLE_NAME, refused.wrapped_under, refused.current
                    USING ERRCODE = '{_SQLSTATE}';
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    for table in _TABLES:
        op.execute(
            f"""
            CREATE TRIGGER {table}_under_the_current_master_key
            AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_keys
            FOR EACH STATEMENT EXECUTE FUNCTION refuse_keys_under_a_retired_master_key()
            """
        )


def downgrade() -> None:
    for table in _TABLES:
        op.execute(f"DROP TRIGGER {table}_under_the_current_master_key ON {table}")
    op.execute("DROP FUNCTION refuse_keys_under_a_retired_master_key()")
