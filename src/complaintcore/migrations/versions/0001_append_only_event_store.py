"""Append-only event store: events table, position sequence, hash chain, immutability trigger.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE event_position_seq AS bigint")
    op.execute(
        """
        CREATE TABLE events (
            position        bigint PRIMARY KEY DEFAULT nextval('event_position_seq'),
            stream_id       text        NOT NULL,
            version         integer     NOT NULL CHECK (version >= 1),
            event_type      text        NOT NULL,
            schema_version  integer     NOT NULL CHECK (schema_version >= 1),
            data            jsonb       NOT NULL,
            metadata        jsonb       NOT NULL,
            -- set on the first event of an append only, so one key marks one append
            idempotency_key text,
            recorded_at     timestamptz NOT NULL,
            prev_hash       char(64)    NOT NULL,
            hash            char(64)    NOT NULL,
            CONSTRAINT events_stream_version_key UNIQUE (stream_id, version)
        )
        """
    )
    op.execute("ALTER SEQUENCE event_position_seq OWNED BY events.position")
    op.execute(
        "CREATE UNIQUE INDEX events_stream_idempotency_key ON events (stream_id, idempotency_key)"
        " WHERE idempotency_key IS NOT NULL"
    )
    op.execute(
        """
        CREATE FUNCTION refuse_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'events are append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON events"
        " FOR EACH ROW EXECUTE FUNCTION refuse_event_change()"
    )
    op.execute(
        "CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events"
        " FOR EACH STATEMENT EXECUTE FUNCTION refuse_event_change()"
    )


def downgrade() -> None:
    raise RuntimeError("the event store is never dropped by a migration")
