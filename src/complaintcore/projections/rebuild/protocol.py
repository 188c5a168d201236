"""What a rebuildable projection is (its table, its row as a function of a case's state, the
tables derived from it), what a rebuild reports as it goes, and the settings it runs with."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from complaintcore.crypto.keys import FileKeyProvider, KeyProvider
from complaintcore.domain.personal_data import Path
from complaintcore.domain.state import ComplaintState
from complaintcore.infra.settings import get_settings
from complaintcore.projections import case_view
from complaintcore.projections.statistics import buckets as statistics_buckets
from complaintcore.projections.statistics import facts as statistics
from complaintcore.projections.streams import PersonalFields

BUILDING = "_rebuild"  # the suffix of the tables a rebuild writes before it swaps them in


class DerivedTables(Protocol):
    """Tables summing a projection's rows, rebuilt and swapped in with it (the statistics'
    monthly buckets)."""

    tables: tuple[str, ...]

    def summary(self) -> Any: ...
    def add(self, summary: Any, record: tuple[Any, ...]) -> None: ...
    def merge(self, summary: Any, other: Any) -> None: ...
    async def seed(self, connection: asyncpg.Connection, table: str) -> Any: ...
    async def copy(self, connection: asyncpg.Connection, summary: Any, suffix: str) -> None: ...
    async def upsert(
        self, connection: asyncpg.Connection, records: list[tuple[Any, ...]], suffix: str
    ) -> None: ...


class _StatisticsBuckets:
    tables = statistics_buckets.TABLES

    def summary(self) -> statistics_buckets.Buckets:
        return statistics_buckets.Buckets()

    def add(self, summary: statistics_buckets.Buckets, record: tuple[Any, ...]) -> None:
        summary.add(record)

    def merge(self, summary: statistics_buckets.Buckets, other: statistics_buckets.Buckets) -> None:
        summary.merge(other)

    async def seed(self, connection: asyncpg.Connection, table: str) -> statistics_buckets.Buckets:
        return await statistics_buckets.buckets_of_table(connection, table)

    async def copy(
        self, connection: asyncpg.Connection, summary: statistics_buckets.Buckets, suffix: str
    ) -> None:
        await statistics_buckets.copy_buckets(connection, summary, suffix)

    async def upsert(
        self, connection: asyncpg.Connection, records: list[tuple[Any, ...]], suffix: str
    ) -> None:
        await statistics_buckets.write_statistics(connection, records, suffix)


Record = Callable[[ComplaintState], tuple[Any, ...]]
"""A projection's row (its columns' values, in order) as a function of a case's state."""

RecordMaker = Callable[[asyncpg.Connection, "RebuildSettings"], Awaitable[Record]]
"""Makes a projection's `Record` for one scan or catch-up, with what it needs that is not in the
events (the blind index's key), read on the connection given, outside any transaction."""


@dataclass(frozen=True)
class RebuildTarget:
    """A rebuildable projection: its table, how its row is made from a case's state, and
    whether it follows the feed with a checkpoint (else the commands write it live); `derived`:
    tables summing its rows, rebuilt and swapped with it."""

    name: str
    table: str
    columns: tuple[str, ...]
    make_record: RecordMaker
    """Called once per range scan (in its worker process) and per catch-up, never per case."""
    follows_feed: bool
    derived: DerivedTables | None = None
    shows: frozenset[Path] = frozenset()
    """The personal fields its rows show (masked): the only ones its rebuild opens."""

    @property
    def building_table(self) -> str:
        return f"{self.table}{BUILDING}"

    @property
    def table_pairs(self) -> list[tuple[str, str]]:
        """(live, building) for the table and each derived one."""
        tables = [self.table, *(self.derived.tables if self.derived else ())]
        return [(table, f"{table}{BUILDING}") for table in tables]


async def _case_view_record(connection: asyncpg.Connection, settings: RebuildSettings) -> Record:
    """The case view's row under the deployment's blind-index key, the one the commands use, so
    a rebuilt `complainant_index` equals the live one."""
    if settings.key_provider is None:
        raise ValueError(
            "rebuilding case_view computes the blind index: it needs the master key "
            "(COMPLAINTCORE_MASTER_KEY_FILE)"
        )
    index_key = await case_view.load_index_key(
        connection, settings.key_provider, settings.cipher_suite
    )

    def record(state: ComplaintState) -> tuple[Any, ...]:
        return case_view.case_view_values(state, index_key)

    return record


async def _statistics_record(connection: asyncpg.Connection, settings: RebuildSettings) -> Record:
    """The statistics' row needs nothing besides the state."""
    return statistics.statistics_row


TARGETS: dict[str, RebuildTarget] = {
    "case_view": RebuildTarget(
        "case_view",
        "case_view",
        case_view.COLUMNS,
        _case_view_record,
        follows_feed=False,
        shows=case_view.PERSONAL_FIELDS_SHOWN,
    ),
    statistics.NAME: RebuildTarget(
        statistics.NAME,
        statistics.TABLE,
        statistics.COLUMNS,
        _statistics_record,
        follows_feed=True,
        derived=_StatisticsBuckets(),
    ),
}


class Progress(Protocol):
    """What a rebuild reports as it goes (the CLI draws a progress bar from it)."""

    def scanning(self, name: str, total: int, done: int) -> None: ...
    def advance(self, events: int) -> None: ...
    def phase(self, name: str, text: str) -> None: ...
    def finished(self, name: str) -> None: ...


class SilentProgress:
    def scanning(self, name: str, total: int, done: int) -> None:
        pass

    def advance(self, events: int) -> None:
        pass

    def phase(self, name: str, text: str) -> None:
        pass

    def finished(self, name: str) -> None:
        pass


def default_scan_workers() -> int:
    """The CPUs this process may run on (its affinity, where the OS tells), at most 8."""
    if hasattr(os, "sched_getaffinity"):
        return min(len(os.sched_getaffinity(0)), 8)
    return min(os.cpu_count() or 1, 8)


def configured_cipher_suite() -> str:
    """`COMPLAINTCORE_CIPHER_SUITE`: the suite a blind-index key is made for, should the rebuild
    be the first to need one (the key's own recorded suite is used after)."""
    return get_settings().cipher_suite


def configured_key_provider() -> KeyProvider | None:
    """The master key of `COMPLAINTCORE_MASTER_KEY_FILE`, if set (the command line passes the
    one `serve` would use, the embedded default's included)."""
    path = get_settings().master_key_file
    return FileKeyProvider(path) if path is not None else None


def personal_fields_of(
    targets: Sequence[RebuildTarget], key_provider: KeyProvider | None
) -> PersonalFields:
    """What folding for `targets` opens: the fields any of them shows."""
    shown = frozenset().union(*(target.shows for target in targets))
    if shown and key_provider is None:
        raise ValueError(
            f"rebuilding {', '.join(t.name for t in targets if t.shows)} opens personal fields: "
            "it needs the master key (COMPLAINTCORE_MASTER_KEY_FILE)"
        )
    return PersonalFields(shown, key_provider if shown else None)


@dataclass(frozen=True)
class RebuildSettings:
    page_events: int = 10_000  # events read per keyset page
    flush_rows: int = 2_000  # cases per COPY batch (and per progress commit)
    catch_up_window: int = 10_000  # feed positions re-folded per catch-up transaction
    close_enough: int = 1_000  # positions behind at which the swap takes its lock
    # processes scanning at once; 1: the scan runs in this process
    scan_workers: int = field(default_factory=default_scan_workers)
    scan_partitions: int | None = None  # ranges a new scan is split into; None: scan_workers
    progress_poll: float = 0.5  # seconds between reads of the workers' progress
    # unwraps each case's key for the fields a projection shows, and the blind index's key
    # (pickled as its file's path)
    key_provider: KeyProvider | None = field(default_factory=configured_key_provider, repr=False)
    cipher_suite: str = field(default_factory=configured_cipher_suite)
    # a hot standby of the database the scan reads the events from (None: the database itself);
    # the tables are written on the primary either way
    read_url: str | None = field(default=None, repr=False)

    @property
    def partitions(self) -> int:
        return max(1, self.scan_partitions or self.scan_workers)
