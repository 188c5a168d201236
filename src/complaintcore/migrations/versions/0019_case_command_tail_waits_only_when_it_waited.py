"""Commands: the read takes the case row's share lock only after waiting for the case lock.

`case_command_tail` (migration 0017) took a share lock on the case's `case_view` row on every
command, to wait for a predecessor that released the case lock in its write statement but had not
committed yet. A row lock is a write: it gave every command's read a transaction id, a WAL record
and a commit that waited for the WAL flush, doubling the flushes a command pays. Now the lock is
first tried: granted at once, nobody held it a moment ago and the stream is read as it stands; only
a command that had to wait takes the row lock (its predecessor may still be committing).

The rare command that arrives in the instant between a predecessor's release and its commit, and
is granted the lock at once, may read the stream without the predecessor's events: its write is
then refused by the head it chains to (the guard and the unique key), and the command is decided
again on the stream as it stands.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_BODY = """
CREATE OR REPLACE FUNCTION case_command_tail(
    lock_space integer, stream text, known_version integer, known_hash text
) RETURNS SETOF events LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT pg_try_advisory_lock(lock_space, hashtext(stream)) THEN
        PERFORM pg_advisory_lock(lock_space, hashtext(stream));
        PERFORM 1 FROM case_view WHERE case_id = stream FOR SHARE;
    END IF;
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


def upgrade() -> None:
    op.execute(_BODY)


def downgrade() -> None:
    op.execute(
        _BODY.replace(
            """    IF NOT pg_try_advisory_lock(lock_space, hashtext(stream)) THEN
        PERFORM pg_advisory_lock(lock_space, hashtext(stream));
        PERFORM 1 FROM case_view WHERE case_id = stream FOR SHARE;
    END IF;""",
            """    PERFORM pg_advisory_lock(lock_space, hashtext(stream));
    PERFORM 1 FROM case_view WHERE case_id = stream FOR SHARE;""",
        )
    )
