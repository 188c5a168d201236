"""Reference data and credentials: the institution tree, holiday calendars, hashed API tokens.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE institutions (
            code       text        PRIMARY KEY
                                   CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
            name       text        NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
            kind       text        NOT NULL CHECK (kind IN ('head_office', 'branch', 'sub_branch')),
            parent     text        REFERENCES institutions (code),
            updated_at timestamptz NOT NULL DEFAULT now(),
            -- a head office is the root of its tree; every other node hangs under one
            CONSTRAINT institutions_root_is_head_office
                CHECK ((kind = 'head_office') = (parent IS NULL)),
            CONSTRAINT institutions_not_own_parent CHECK (parent <> code)
        )
        """
    )
    op.execute("CREATE INDEX institutions_parent ON institutions (parent)")
    op.execute(
        """
        CREATE TABLE calendar_years (
            year                  integer     PRIMARY KEY CHECK (year BETWEEN 1949 AND 2100),
            holidays              date[]      NOT NULL,
            adjusted_working_days date[]      NOT NULL,
            loaded_at             timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE api_tokens (
            -- SHA-256 hex of the bearer token; the token itself is never stored
            token_hash   text        PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
            principal_id text        NOT NULL CHECK (length(principal_id) BETWEEN 1 AND 128),
            role         text        NOT NULL
                                     CHECK (role IN ('staff', 'supervisor', 'regulator', 'admin')),
            institution  text        REFERENCES institutions (code),
            created_at   timestamptz NOT NULL DEFAULT now(),
            revoked_at   timestamptz,
            CONSTRAINT api_tokens_institution_fits_role CHECK (
                CASE role
                    WHEN 'regulator' THEN institution IS NULL
                    WHEN 'admin' THEN true
                    ELSE institution IS NOT NULL
                END
            )
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE api_tokens")
    op.execute("DROP TABLE calendar_years")
    op.execute("DROP TABLE institutions")
