"""Case keys: each case's data key, wrapped by the master key, kept apart from the events.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per case whose personal fields are encrypted (DOMAIN.md "Personal data"): the
    # case's data key, only ever stored wrapped under the master key named by `key_id`
    # (crypto/keys.py), for the suite its fields are sealed with.
    #
    # Deletable on purpose, unlike `events` (no append-only trigger here): erasing a case's
    # personal data *is* deleting its row (crypto-shredding), while its events, and so its hash
    # chain, stay byte for byte as they were. A trigger refusing DELETE would make erasure
    # impossible; the row holds no personal data, only a wrapped key.
    op.execute(
        """
        CREATE TABLE case_keys (
            case_id      text        PRIMARY KEY,
            suite        text        NOT NULL CHECK (suite IN ('aes-256-gcm', 'sm4-gcm')),
            key_id       text        NOT NULL,
            wrapped      bytea       NOT NULL,
            created_at   timestamptz NOT NULL DEFAULT now(),
            rewrapped_at timestamptz
        )
        """
    )
    # Rotation re-wraps the rows whose key id is not the new master key's: it walks each old
    # key id's rows in case order (so an interrupted rotation resumes where rows are left, and a
    # run never rescans what it has done), and start-up reads the few distinct key ids from
    # here to check the master key file against them (events/case_keys.py).
    op.execute("CREATE INDEX case_keys_key_id ON case_keys (key_id, case_id)")


def downgrade() -> None:
    op.execute("DROP TABLE case_keys")
