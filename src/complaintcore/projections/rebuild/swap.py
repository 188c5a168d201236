"""Steps 3 and 4 for one projection whose scan is done and whose indexes are built (step 2, which
the rebuild runs for every projection at once before finishing any): what was written meanwhile
caught up and its new tables swapped in, under the lock its kind needs (`finish`)."""

import asyncpg

from complaintcore.events.store import feed_complete_up_to
from complaintcore.projections.rebuild.jobs import (
    RebuildJob,
    forget_job,
    set_caught_up_to,
)
from complaintcore.projections.rebuild.protocol import (
    Progress,
    RebuildSettings,
    RebuildTarget,
    Record,
    personal_fields_of,
)
from complaintcore.projections.rebuild.tables import swap_tables, upsert_rows
from complaintcore.projections.runner import read_checkpoint
from complaintcore.projections.streams import fold_streams

_ALL_POSITIONS = 2**62


class TargetRebuild:
    """Steps 3 and 4 for one projection whose indexes are built."""

    def __init__(
        self,
        target: RebuildTarget,
        job: RebuildJob,
        progress: Progress,
        settings: RebuildSettings,
    ) -> None:
        self.target = target
        self.job = job
        self._progress = progress
        self._settings = settings
        self._record: Record | None = None  # the target's row maker, made as `finish` starts

    async def finish(self, connection: asyncpg.Connection) -> int:
        """Catch up and swap, once `build_indexes` is done; the position swapped in at."""
        self._record = await self.target.make_record(connection, self._settings)
        return await self._catch_up_and_swap(connection)

    # --- 3 and 4. catch up and swap --------------------------------------------------------------

    async def _catch_up_and_swap(self, connection: asyncpg.Connection) -> int:
        self._progress.phase(self.target.name, "catching up with what was written meanwhile")
        while True:
            position = await self._live_position(connection)
            if position - self.job.caught_up_to <= self._settings.close_enough:
                break
            await self._catch_up(connection, position)
        self._progress.phase(self.target.name, "swapping the new table in")
        if self.target.follows_feed:
            return await self._swap_checkpointed(connection)
        return await self._swap_live(connection)

    async def _live_position(self, connection: asyncpg.Connection) -> int:
        if self.target.follows_feed:
            return await read_checkpoint(connection, self.target.name)
        return await feed_complete_up_to(connection)

    async def _catch_up(
        self, connection: asyncpg.Connection, up_to: int, *, committing: bool = True
    ) -> None:
        """Re-fold the cases with events in (caught_up_to, up_to], window by window."""
        while self.job.caught_up_to < up_to:
            window_end = min(up_to, self.job.caught_up_to + self._settings.catch_up_window)
            if committing:
                async with connection.transaction():
                    await self._refold_window(connection, window_end)
            else:
                await self._refold_window(connection, window_end)

    async def _refold_window(self, connection: asyncpg.Connection, window_end: int | None) -> None:
        """Re-fold the cases with events after `caught_up_to` (up to `window_end`, or all).

        Feed-following tables fold each case up to the window's end, as the runner would;
        live-written ones fold the whole case, as the last command wrote it."""
        target, job = self.target, self.job
        stream_ids = await connection.fetch(
            "SELECT DISTINCT stream_id FROM events WHERE position > $1 AND position <= $2",
            job.caught_up_to,
            window_end if window_end is not None else _ALL_POSITIONS,
        )
        fold_up_to = window_end if target.follows_feed and window_end else _ALL_POSITIONS
        states = await fold_streams(
            connection,
            [row["stream_id"] for row in stream_ids],
            fold_up_to,
            personal_fields_of([target], self._settings.key_provider),
        )
        record = self._record
        assert record is not None, "made as `finish` starts"
        await upsert_rows(connection, target, [record(state) for state in states])
        reached = window_end
        if reached is None:
            reached = await connection.fetchval(
                "SELECT coalesce(max(position), $1) FROM events", job.caught_up_to
            )
        await set_caught_up_to(connection, job, reached)

    async def _swap_live(self, connection: asyncpg.Connection) -> int:
        """Commands write the live table: lock it, take in the last of them, swap."""
        async with connection.transaction():
            await connection.execute(f"LOCK TABLE {self.target.table} IN ACCESS EXCLUSIVE MODE")
            await self._refold_window(connection, None)
            await self._swap_tables(connection)
        return self.job.caught_up_to

    async def _swap_checkpointed(self, connection: asyncpg.Connection) -> int:
        """The runner writes the live table: hold its checkpoint, catch up to it, swap, and
        move it to what the new table holds."""
        target = self.target
        async with connection.transaction():
            checkpoint = await connection.fetchval(
                "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
                target.name,
            )
            await self._catch_up(connection, checkpoint, committing=False)
            position = max(checkpoint, self.job.caught_up_to)
            await connection.execute(f"LOCK TABLE {target.table} IN ACCESS EXCLUSIVE MODE")
            await self._swap_tables(connection)
            await connection.execute(
                "UPDATE projection_checkpoints SET position = $2, updated_at = now()"
                " WHERE name = $1",
                target.name,
                position,
            )
        return position

    async def _swap_tables(self, connection: asyncpg.Connection) -> None:
        await swap_tables(connection, self.target)
        await forget_job(connection, self.target.name)
