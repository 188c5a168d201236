"""A rebuild's progress row in `projection_rebuilds`: the feed position its scan stops at, its
phase and how far its catch-up got, so an interrupted rebuild resumes."""

from dataclasses import dataclass

import asyncpg

from complaintcore.projections.rebuild.protocol import RebuildTarget


@dataclass
class RebuildJob:
    """The progress row of a rebuild (table `projection_rebuilds`); the scan's progress is in
    its ranges' rows (`ScanRange`), `events_done` here is set when the scan ends."""

    name: str
    phase: str  # scan, index, catch_up
    start_position: int
    caught_up_to: int
    events_done: int
    events_total: int
    resumed: bool = False


def job_of(row: asyncpg.Record, *, resumed: bool) -> RebuildJob:
    return RebuildJob(
        name=row["name"],
        phase=row["phase"],
        start_position=row["start_position"],
        caught_up_to=row["caught_up_to"],
        events_done=row["events_done"],
        events_total=row["events_total"],
        resumed=resumed,
    )


async def job_rows(connection: asyncpg.Connection, names: list[str]) -> dict[str, asyncpg.Record]:
    """The progress rows of these rebuilds that exist, by name."""
    rows = await connection.fetch(
        "SELECT * FROM projection_rebuilds WHERE name = ANY($1::text[])", names
    )
    return {row["name"]: row for row in rows}


async def job_row(connection: asyncpg.Connection, name: str) -> asyncpg.Record | None:
    return await connection.fetchrow("SELECT * FROM projection_rebuilds WHERE name = $1", name)


async def start_job(
    connection: asyncpg.Connection, target: RebuildTarget, start_position: int, total: int
) -> None:
    """A fresh progress row for `target`, in its scan phase (replacing any row before)."""
    await connection.execute(
        """
        INSERT INTO projection_rebuilds
            (name, building_table, phase, start_position, caught_up_to, events_total)
        VALUES ($1, $2, 'scan', $3, $3, $4)
        ON CONFLICT (name) DO UPDATE SET
            building_table = EXCLUDED.building_table, phase = 'scan',
            start_position = $3, caught_up_to = $3,
            events_done = 0, events_total = $4, started_at = now(), updated_at = now()
        """,
        target.name,
        target.building_table,
        start_position,
        total,
    )


async def set_events_done(connection: asyncpg.Connection, job: RebuildJob, events: int) -> None:
    await connection.execute(
        "UPDATE projection_rebuilds SET events_done = $2 WHERE name = $1", job.name, events
    )
    job.events_done = events


async def set_phase(connection: asyncpg.Connection, job: RebuildJob, phase: str) -> None:
    await connection.execute(
        "UPDATE projection_rebuilds SET phase = $2, updated_at = now() WHERE name = $1",
        job.name,
        phase,
    )
    job.phase = phase


async def set_caught_up_to(connection: asyncpg.Connection, job: RebuildJob, position: int) -> None:
    await connection.execute(
        "UPDATE projection_rebuilds SET caught_up_to = $2, updated_at = now() WHERE name = $1",
        job.name,
        position,
    )
    job.caught_up_to = position


async def forget_job(connection: asyncpg.Connection, name: str) -> None:
    """Drop the progress row (and, by its foreign key, its ranges' rows): the rebuild is done."""
    await connection.execute("DELETE FROM projection_rebuilds WHERE name = $1", name)
