"""Institution policy versions (DOMAIN.md "Institution policy"), table
`institution_policy_versions` (migration 0012).

Why an append-only table and not a stream of events: a policy belongs to an institution, not to
a case, and the event store's streams are cases (sealed under a case's key, folded into case
state, counted by the statistics runner, imported in bulk). A table of its own with a trigger
refusing UPDATE, DELETE and TRUNCATE keeps the history as immutable as `events` is, each row
naming who recorded it and when, and is read with one plain SELECT along a lineage. Auditors look
a version up by its id, `<institution>/v<number>`, which every event judged under it names in
`metadata.policy_version`.

Versions are recorded one at a time (an advisory lock), so their global `id`s commit in order:
a process that read every version up to the greatest `id` has read them all, and keeps them
until the greatest `id` it finds with a command's case lock differs (one scalar in the same
round trip). The table is small (a row per admin change), so the whole of it is kept.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import asyncpg

from complaintcore.domain.policy import (
    DueSoonDays,
    PolicySettings,
    PolicyVersion,
    ResolvedPolicy,
    check_effective_from,
    due_soon_days_on,
    resolve_policy,
)
from complaintcore.domain.taxonomy import Taxonomy, TaxonomyItem
from complaintcore.infra import advisory_locks
from complaintcore.reference.institutions import lineage_sql

POLICY_STAMP_SQL = "SELECT coalesce(max(id), 0) FROM institution_policy_versions"
_COLUMNS = """
    id, institution, number, effective_from, roll_past_holidays, due_soon_days,
    retention_years, staff_redress_limit_fen, supervisor_redress_limit_fen, taxonomy,
    recorded_by, recorded_at
"""
_SELECT_ALL = f"SELECT {_COLUMNS} FROM institution_policy_versions ORDER BY id"
_SELECT_OF_NODE = (
    f"SELECT {_COLUMNS} FROM institution_policy_versions WHERE institution = $1 ORDER BY number"
)
_INSERT = """
    INSERT INTO institution_policy_versions (
        institution, number, effective_from, roll_past_holidays, due_soon_days, retention_years,
        staff_redress_limit_fen, supervisor_redress_limit_fen, taxonomy, recorded_by
    )
    SELECT $1, coalesce(max(number), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9
    FROM institution_policy_versions WHERE institution = $1
"""
_SELECT_ALONG = (
    f"SELECT {_COLUMNS} FROM institution_policy_versions WHERE institution = ANY($1::text[])"
)
_LINEAGE = f"SELECT ARRAY({lineage_sql('$1')})"
_LINEAGE_AND_STAMP = (
    f"SELECT ARRAY({lineage_sql('$1')}) AS lineage, ({POLICY_STAMP_SQL}) AS policy_stamp"
)


class UnknownPolicyInstitution(Exception):
    """No institution has this code."""


@dataclass(frozen=True)
class RecordedPolicyVersion:
    """A stored version with who recorded it and when."""

    version: PolicyVersion
    recorded_by: str
    recorded_at: datetime


@dataclass(frozen=True)
class _Kept:
    """Every version up to `stamp`, and the policies resolved from them (lineage and day: a
    command resolves two, about 7 µs each, and the same few occur again and again)."""

    stamp: int
    versions: tuple[PolicyVersion, ...]
    resolved: dict[tuple[tuple[str, ...], date], ResolvedPolicy] = field(default_factory=dict)


_RESOLVED_KEPT = 4096  # lineages times days: past it, the kept resolutions start over


class PolicyStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._kept = _Kept(stamp=-1, versions=())

    async def append(
        self,
        institution: str,
        effective_from: date,
        settings: PolicySettings,
        recorded_by: str,
        today: date,
    ) -> list[RecordedPolicyVersion]:
        """Record a version of `institution`'s policy (an admin act, by `recorded_by`); the
        node's versions after it. The same version as the node's last one again records
        nothing: a PUT sent again (its answer lost) leaves the policy as one did (RFC 9110
        9.2.2). Raises `PolicyRefused` for a past `effective_from` and
        `UnknownPolicyInstitution`."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "SELECT pg_advisory_xact_lock($1, 0)", advisory_locks.POLICY_WRITES
            )
            if not await connection.fetchval(
                "SELECT EXISTS (SELECT 1 FROM institutions WHERE code = $1)", institution
            ):
                raise UnknownPolicyInstitution(institution)
            history = await self.history(institution, connection=connection)
            if history and _same_version(history[-1].version, effective_from, settings):
                # before the date's check: a PUT effective today whose answer was lost just
                # before midnight, sent again after it, is the one PUT (found by a review pass)
                return history
            check_effective_from(effective_from, today)
            await connection.execute(
                _INSERT,
                institution,
                effective_from,
                settings.roll_past_holidays,
                settings.due_soon_days,
                settings.retention_years,
                settings.staff_redress_limit_fen,
                settings.supervisor_redress_limit_fen,
                taxonomy_document(settings.taxonomy),
                recorded_by,
            )
            return await self.history(institution, connection=connection)

    async def history(
        self, institution: str, *, connection: asyncpg.Connection | None = None
    ) -> list[RecordedPolicyVersion]:
        """Every version of the node's policy, in recording order."""
        rows = await (connection or self._pool).fetch(_SELECT_OF_NODE, institution)
        return [_recorded(row) for row in rows]

    async def in_force(
        self, institution: str, on: date, *, connection: asyncpg.Connection | None = None
    ) -> ResolvedPolicy:
        """The policy in force at `institution` on `on` (one round trip while no policy changed;
        an unknown code gets the defaults)."""
        row = await (connection or self._pool).fetchrow(_LINEAGE_AND_STAMP, institution)
        return await self.in_force_along(
            tuple(row["lineage"]), on, row["policy_stamp"], connection=connection
        )

    async def in_force_along(
        self,
        lineage: Sequence[str],
        on: date,
        stamp: int | None,
        *,
        connection: asyncpg.Connection | None = None,
    ) -> ResolvedPolicy:
        """The policy in force on `on` at `lineage[0]`, `lineage` read from the institution up
        (as `InstitutionDirectory.lineage` gives it); `stamp`: the greatest version id read with
        it (`POLICY_STAMP_SQL`), None to read the versions anew."""
        versions = await self._versions(stamp, connection)
        kept = self._kept
        if stamp is None or stamp != kept.stamp:
            return resolve_policy(tuple(reversed(lineage)), versions, on)
        key = (tuple(lineage), on)
        resolved = kept.resolved.get(key)
        if resolved is None:
            if len(kept.resolved) >= _RESOLVED_KEPT:
                kept.resolved.clear()
            resolved = kept.resolved[key] = resolve_policy(tuple(reversed(lineage)), versions, on)
        return resolved

    async def due_soon_days(self, on: date) -> DueSoonDays:
        """Every institution's `due_soon_days` on `on`, for a clock filter over many (the case
        list, the deadlines): one round trip while no version sets it, two when some does."""
        stamp = await self._pool.fetchval(POLICY_STAMP_SQL)
        versions = await self._versions(stamp, None)
        if not any(version.settings.due_soon_days is not None for version in versions):
            return DueSoonDays()
        rows = await self._pool.fetch("SELECT code, parent FROM institutions")
        return due_soon_days_on({row["code"]: row["parent"] for row in rows}, versions, on)

    async def _versions(
        self, stamp: int | None, connection: asyncpg.Connection | None
    ) -> tuple[PolicyVersion, ...]:
        kept = self._kept
        if stamp is not None and stamp == kept.stamp:
            return kept.versions
        rows = await (connection or self._pool).fetch(_SELECT_ALL)
        versions = tuple(_recorded(row).version for row in rows)
        self._kept = _Kept(stamp=rows[-1]["id"] if rows else 0, versions=versions)
        return versions


async def all_policy_versions(
    executor: asyncpg.Connection | asyncpg.Pool,
) -> tuple[PolicyVersion, ...]:
    """Every stored version of every node, in recording order: for a job that resolves many
    institutions' policies itself (the bulk import)."""
    return tuple(_recorded(row).version for row in await executor.fetch(_SELECT_ALL))


async def read_policy_in_force(
    executor: asyncpg.Connection | asyncpg.Pool, institution: str, on: date
) -> ResolvedPolicy:
    """The policy in force at `institution` on `on`, read afresh (two round trips, nothing
    kept): for a job on a connection of its own, such as the retention sweep."""
    lineage = tuple(await executor.fetchval(_LINEAGE, institution) or ())
    rows = await executor.fetch(_SELECT_ALONG, list(lineage))
    versions = [_recorded(row).version for row in rows]
    return resolve_policy(tuple(reversed(lineage)), versions, on)


def _same_version(last: PolicyVersion, effective_from: date, settings: PolicySettings) -> bool:
    return last.effective_from == effective_from and last.settings == settings


def _recorded(row: asyncpg.Record) -> RecordedPolicyVersion:
    settings = PolicySettings(
        roll_past_holidays=row["roll_past_holidays"],
        due_soon_days=row["due_soon_days"],
        retention_years=row["retention_years"],
        staff_redress_limit_fen=row["staff_redress_limit_fen"],
        supervisor_redress_limit_fen=row["supervisor_redress_limit_fen"],
        taxonomy=taxonomy_of(row["taxonomy"]) if row["taxonomy"] is not None else None,
    )
    version = PolicyVersion(row["institution"], row["number"], row["effective_from"], settings)
    return RecordedPolicyVersion(version, row["recorded_by"], row["recorded_at"])


def taxonomy_document(taxonomy: Taxonomy | None) -> dict[str, Any] | None:
    """The taxonomy as its column keeps it (and the API shows it): each list of items, each item
    its code and labels."""
    if taxonomy is None:
        return None
    return {
        "business": [_item_document(item) for item in taxonomy.business],
        "causes": [_item_document(item) for item in taxonomy.causes],
    }


def taxonomy_of(document: dict[str, Any]) -> Taxonomy:
    """The taxonomy of its document (as `taxonomy_document` makes one, or a request gives it)."""
    return Taxonomy(
        business=tuple(TaxonomyItem(**item) for item in document["business"]),
        causes=tuple(TaxonomyItem(**item) for item in document["causes"]),
    )


def _item_document(item: TaxonomyItem) -> dict[str, str]:
    return {"code": item.code, "label_zh": item.label_zh, "label_en": item.label_en}
