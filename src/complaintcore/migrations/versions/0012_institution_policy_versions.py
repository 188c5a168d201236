"""Institution policy with history: every change of a node's policy is a row of its own, kept for
good (a trigger refuses UPDATE, DELETE and TRUNCATE, as on `events`).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per version: `number` counts a node's versions from 1 in recording order; `id` is
    # global and only grows, so its maximum tells a process whether any policy changed since it
    # last read them (application/policy_store.py). A NULL value is not set by the version:
    # inherited from the nearest ancestor that sets it, or DOMAIN.md's default.
    op.execute(
        """
        CREATE TABLE institution_policy_versions (
            id                           bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
            institution                  text        NOT NULL REFERENCES institutions (code),
            number                       integer     NOT NULL CHECK (number >= 1),
            effective_from               date        NOT NULL,
            roll_past_holidays           boolean,
            due_soon_days                integer     CHECK (due_soon_days >= 0),
            retention_years              integer     CHECK (retention_years >= 1),
            staff_redress_limit_fen      bigint      CHECK (staff_redress_limit_fen >= 0),
            supervisor_redress_limit_fen bigint      CHECK (supervisor_redress_limit_fen >= 0),
            recorded_by                  text        NOT NULL,
            recorded_at                  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (institution, number)
        )
        """
    )
    op.execute(
        """
        CREATE FUNCTION refuse_policy_version_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'institution policy versions are append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER institution_policy_versions_refuse_update_delete"
        " BEFORE UPDATE OR DELETE ON institution_policy_versions"
        " FOR EACH ROW EXECUTE FUNCTION refuse_policy_version_change()"
    )
    op.execute(
        "CREATE TRIGGER institution_policy_versions_refuse_truncate"
        " BEFORE TRUNCATE ON institution_policy_versions"
        " FOR EACH STATEMENT EXECUTE FUNCTION refuse_policy_version_change()"
    )


def downgrade() -> None:
    # Only for stepping back over this revision (as tests of older migrations do): the table
    # goes with its triggers; production never downgrades.
    op.execute("DROP TABLE institution_policy_versions")
    op.execute("DROP FUNCTION refuse_policy_version_change()")
