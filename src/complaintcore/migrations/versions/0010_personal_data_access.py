"""Personal data access log: every reveal of a case's personal data, append-only.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per reveal (DOMAIN.md "Personal data", Reveal): who asked (actor, role and, for
    # staff and supervisors, institution), when, for which case and for what stated purpose.
    # Written and committed before the plaintext is answered (application/personal_data_reveal.py),
    # so a reveal never happens unlogged. No personal data is stored here: only the purpose the
    # caller typed, which regulators and admins read.
    op.execute(
        """
        CREATE TABLE personal_data_access (
            id          bigserial   PRIMARY KEY,
            at          timestamptz NOT NULL DEFAULT now(),
            actor       text        NOT NULL,
            role        text        NOT NULL,
            institution text,
            case_id     text        NOT NULL,
            purpose     text        NOT NULL
                CHECK (char_length(purpose) BETWEEN 1 AND 200)
        )
        """
    )
    # Append-only like `events` (0001): a log that could be edited proves nothing.
    op.execute(
        """
        CREATE FUNCTION refuse_personal_data_access_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'personal_data_access is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER personal_data_access_refuse_update_delete"
        " BEFORE UPDATE OR DELETE ON personal_data_access"
        " FOR EACH ROW EXECUTE FUNCTION refuse_personal_data_access_change()"
    )
    op.execute(
        "CREATE TRIGGER personal_data_access_refuse_truncate"
        " BEFORE TRUNCATE ON personal_data_access"
        " FOR EACH STATEMENT EXECUTE FUNCTION refuse_personal_data_access_change()"
    )
    # The log's reads: one case's reveals, and everything in a period, newest first (id breaks
    # ties of `at`, which is the transaction's time).
    op.execute(
        "CREATE INDEX personal_data_access_case_at ON personal_data_access (case_id, at, id)"
    )
    op.execute("CREATE INDEX personal_data_access_at ON personal_data_access (at, id)")


def downgrade() -> None:
    # Only for stepping back over this revision (as tests of older migrations do): the table
    # goes with its triggers; production never downgrades.
    op.execute("DROP TABLE personal_data_access")
    op.execute("DROP FUNCTION refuse_personal_data_access_change()")
