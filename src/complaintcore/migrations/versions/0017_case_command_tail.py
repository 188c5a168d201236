"""Commands: the case lock and the stream's tail in one round trip.

A command reads what it decides on in one statement and writes what it decided in a second
(application/case_command_store.py). The first calls this function: it takes the case's lock for
the session (the write statement releases it), waits for a command that released it but whose
write has not committed yet (its `case_view` row stays locked until then: every command writes
that row), and only then reads the stream. A function, because in READ COMMITTED each statement
in it takes a fresh snapshot: a plain SELECT would read the stream as it was before the lock was
granted, missing what the command it waited for wrote.

The stream read is the part after `known_version` when the event there still has `known_hash`
(the caller holds the stream up to it), else all of it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION case_command_tail(
            lock_space integer, stream text, known_version integer, known_hash text
        ) RETURNS SETOF events LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM pg_advisory_lock(lock_space, hashtext(stream));
            PERFORM 1 FROM case_view WHERE case_id = stream FOR SHARE;
            IF known_version > 0 AND EXISTS (
                SELECT 1 FROM events
                WHERE stream_id = stream AND version = known_version AND hash = known_hash
            ) THEN
                RETURN QUERY SELECT * FROM events
                    WHERE stream_id = stream AND version > known_version ORDER BY version;
            ELSE
                RETURN QUERY SELECT * FROM events WHERE stream_id = stream ORDER BY version;
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION case_command_tail(integer, text, integer, text)")
