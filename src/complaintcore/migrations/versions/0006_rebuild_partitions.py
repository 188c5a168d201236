"""Rebuild partitions: a rebuild's scan split into stream-id ranges, each with its own progress.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The scan of a rebuild is split into contiguous ranges of stream ids (after_stream_id,
    # up_to_stream_id], each scanned by its own process; a range remembers the last case it
    # wrote, in the transaction that writes its rows, so an interrupted scan resumes each range
    # after that case (projections/rebuild/). NULL bounds: open ends.
    op.execute(
        """
        CREATE TABLE projection_rebuild_partitions (
            name            text    NOT NULL REFERENCES projection_rebuilds ON DELETE CASCADE,
            partition       integer NOT NULL,
            after_stream_id text,
            up_to_stream_id text,
            last_stream_id  text,
            events_done     bigint  NOT NULL DEFAULT 0,
            PRIMARY KEY (name, partition)
        )
        """
    )
    # A scan interrupted before this migration goes on as a single range.
    op.execute(
        """
        INSERT INTO projection_rebuild_partitions (name, partition, last_stream_id, events_done)
        SELECT name, 0, last_stream_id, events_done FROM projection_rebuilds WHERE phase = 'scan'
        """
    )
    op.execute("ALTER TABLE projection_rebuilds DROP COLUMN last_stream_id")


def downgrade() -> None:
    op.execute("ALTER TABLE projection_rebuilds ADD COLUMN last_stream_id text")
    # A scan split into several ranges cannot be resumed as one: it starts over.
    op.execute(
        """
        DELETE FROM projection_rebuilds AS r WHERE phase = 'scan'
          AND (SELECT count(*) FROM projection_rebuild_partitions AS p WHERE p.name = r.name) > 1
        """
    )
    op.execute(
        """
        UPDATE projection_rebuilds AS r SET last_stream_id = p.last_stream_id,
            events_done = p.events_done
        FROM projection_rebuild_partitions AS p WHERE p.name = r.name AND r.phase = 'scan'
        """
    )
    op.execute("DROP TABLE projection_rebuild_partitions")
