"""The SQL of a command on a case, in two round trips (`CaseCommandStore`, for PostgreSQL).

`read_locked`, one statement: take the case's lock, for the session (a command spans two
statements, each its own transaction), and bring everything the decision needs: the stream after
the state the process kept of it (all of it when that is no longer its beginning), the
respondent's lineage, the case's wrapped data key, the policy and calendar stamps, what the
caller's credential stands for now, and the response stored under the request's idempotency key.
The lock and the stream read happen in `case_command_tail` (migration 0017), so the stream is read
after the lock is granted, as it stands then.

`write`, one statement: append the events (taking the feed's floor lock first and guarded by the
head they chain to, as every append), write the case's row and the response to replay, and release
the lock. One statement, so all of it is committed or none. Releasing before the commit is safe:
a command that had to wait for the lock then waits for the `case_view` row this statement has
locked, that is for its commit, before it reads the stream (migration 0019); one granted the lock
at once in the instant before that commit may read the stream without it, and its write is then
refused by the head it chains to and decided again.

`release`: a command that stores nothing (refused, invalid, a stale If-Match, a replay) gives the
lock back. If that fails, the connection is closed: its session, and the lock, end with it.

`lock_merge_target`: the case a merge names is locked too (until `release`), and waited for
until every command that wrote it has committed, so that a read after it finds the case as it
stands: two cases merged into each other at once, or a merge into a case closing at that moment,
must not each find the other still open. Two opposite merges wait for each other until
PostgreSQL ends one (a deadlock), which is then a lost race (`MergeTargetBusy`).

Rare needs (another case's state for a merge, a changed calendar or policy, a key to create or
destroy) cost round trips of their own between the two; the common command pays two.
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Protocol

import asyncpg
import structlog

from complaintcore.application.idempotency import (
    IdempotentRequest,
    StoredResponse,
    lookup_values,
    save_sql,
    stored_response_of,
    stored_response_sql,
)
from complaintcore.application.policy_store import POLICY_STAMP_SQL
from complaintcore.events.chaining import chained_rows
from complaintcore.events.codec import UNREADABLE_STREAM, StreamDamaged, versions_run_on
from complaintcore.events.model import ConcurrencyError, NewEvent, StoredEvent
from complaintcore.events.store import insert_statement, stored_event
from complaintcore.infra import advisory_locks
from complaintcore.infra.metrics import STORE_APPENDS
from complaintcore.projections.case_view import upsert_sql
from complaintcore.projections.streams import decode_columns, fold_stream
from complaintcore.reference.institutions import lineage_sql

log = structlog.get_logger("complaintcore.case_commands")

# The respondent's lineage, for the institution the case's row names: a hint, checked against the
# case's folded state. Reference data: the statement's snapshot, taken before the lock is
# granted, is recent enough. So are the stamps, which only say whether what a process keeps is
# still current, and the wrapped key (a case's key changes only by its erasure, which is an event
# of the stream read after the lock).
_CONTEXT = {
    "respondent_lineage": "ARRAY("
    + lineage_sql("(SELECT respondent_institution FROM case_view WHERE case_id = $2)")
    + ")",
    "wrapped_key": "(SELECT wrapped FROM case_keys WHERE case_id = $2)",
    "policy_stamp": f"({POLICY_STAMP_SQL})",
}
_TAIL = "case_command_tail($1, $2, $3, $4)"
_RELEASE = "SELECT pg_advisory_unlock_all()"
# the lock, then the case row's share lock: it waits for the commit of a command that released
# the lock in its write statement (migration 0019 waits so only when the lock made it wait)
_LOCK_MERGE_TARGET = """
SELECT pg_advisory_lock($1, hashtext($2)),
       (SELECT count(*) FROM (SELECT FROM case_view WHERE case_id = $2 FOR SHARE) AS row_locked)
"""

# The same lock until the caller's transaction ends, on several cases in case id order (two
# callers lock shared cases alike): the advisory locks, then the case rows, in that order.
_LOCK_UNTIL_COMMIT = """
SELECT count(pg_advisory_xact_lock($1, hashtext(t.case_id)))
FROM (SELECT unnest($2::text[]) AS case_id ORDER BY 1) AS t
"""
_WAIT_FOR_WRITERS = """
SELECT count(*) FROM (
    SELECT FROM case_view WHERE case_id = ANY($1::text[]) ORDER BY case_id FOR SHARE
) AS row_locked
"""

_STREAM_SUITES = "SELECT metadata->>'cipher_suite' FROM events WHERE stream_id = $1"
# The events of every case merged into the case, and into those, down the chain (one complaint
# all; a review pass found a duplicate's duplicate passed over), in one round trip. A command's
# row is written with its events (`write`), so a merge is here once it commits; the partial
# index of migration 0028 finds each level. A case merged away takes no command, so below the
# case's own lock nothing moves.
_MERGED_DUPLICATES_EVENTS = f"""
WITH RECURSIVE merged(case_id) AS (
    SELECT case_id FROM case_view WHERE merged_into = $1
    UNION SELECT v.case_id FROM case_view AS v JOIN merged AS m ON v.merged_into = m.case_id
)
SELECT merged.case_id AS duplicate, {decode_columns(with_keys=False)}
FROM merged LEFT JOIN events ON events.stream_id = merged.case_id
ORDER BY merged.case_id, events.version
"""


async def lock_cases_until_commit(connection: asyncpg.Connection, case_ids: Sequence[str]) -> None:
    """Lock `case_ids` as a merge locks its target (`lock_merge_target`), once their writers
    have committed, until the caller's transaction ends: a bulk import's stored merge targets
    while its batch is written."""
    ordered = sorted(case_ids)
    await connection.execute(_LOCK_UNTIL_COMMIT, advisory_locks.CASE_COMMANDS, ordered)
    await connection.execute(_WAIT_FOR_WRITERS, ordered)


class Confirmation(Protocol):
    """A principal known from before, confirmed by a scalar subquery reading `argument`."""

    @property
    def argument(self) -> Any: ...
    def sql(self, parameter: str) -> str: ...


@dataclass(frozen=True)
class LockedCase:
    """What `read_locked` brings; `events` follow the head asked about when `after_head`,
    else they are the whole stream."""

    events: list[StoredEvent]
    after_head: bool
    respondent_lineage: tuple[str, ...]
    wrapped_key: Any
    policy_stamp: int
    calendar_stamp: str | None
    actor: Any
    stored_response: StoredResponse | None


@dataclass(frozen=True)
class CaseWrite:
    stream_id: str
    events: Sequence[NewEvent]
    head: tuple[int, str]
    """The version and hash the events chain to: (0, genesis) for a new case."""
    case_view: tuple[Any, ...]
    """`case_view.case_view_values` of the state the events lead to."""
    response: tuple[Any, ...] | None
    """`idempotency.saved_values` of the answer, when the request has a key."""
    releases_lock: bool


@dataclass(frozen=True)
class Written:
    positions: tuple[int, ...]
    last_hash: str


class MergeTargetBusy(Exception):
    """A merge's target was being merged into the merge's own case at the same time: a lost
    race, decided again (the case then reads as merged, or the target does)."""

    def __init__(self, target_id: str) -> None:
        super().__init__(f"case {target_id} is being merged into this one")
        self.target_id = target_id


class CaseCommandStore(Protocol):
    async def read_locked(
        self,
        connection: asyncpg.Connection,
        case_id: str,
        head: tuple[int, str] | None,
        confirmation: Confirmation | None,
        idempotency: IdempotentRequest | None,
    ) -> LockedCase: ...

    async def write(self, connection: asyncpg.Connection, write: CaseWrite) -> Written:
        """`ConcurrencyError` when the head is no longer the stream's."""
        ...

    async def release(self, connection: asyncpg.Connection) -> None: ...

    async def lock_merge_target(self, connection: asyncpg.Connection, case_id: str) -> None:
        """Lock the case a merge names too, once its writers have committed (see the module's
        note); `MergeTargetBusy` when two merges wait for each other's case."""
        ...

    async def stream_suites(
        self, connection: asyncpg.Connection, stream_id: str
    ) -> list[str | None]:
        """The suite each event of the stream was sealed under (None: written in clear)."""
        ...

    async def barred_on_merged_duplicates(
        self, connection: asyncpg.Connection, case_id: str
    ) -> frozenset[str]:
        """The staff barred on the cases merged into `case_id` (`ComplaintState.barred_handlers`
        of each), as committed when asked: under the case's lock, which a merge into it takes
        too, so none is in flight."""
        ...


def _barred_on_duplicate(
    case_id: str, duplicate: str, rows: list[asyncpg.Record]
) -> frozenset[str]:
    """The staff barred on `duplicate`, folded from its `rows` with none of the fields opened
    (staff ids are no personal data, no key is read); `StreamDamaged` for a stream that is not
    whole or cannot be read, rather than a bar silently lost (found by a review pass: a
    recusal deleted behind the trigger let the recused handler be assigned the case)."""
    try:
        if not rows or not versions_run_on([row["version"] for row in rows]):
            raise StreamDamaged(f"case {duplicate} has events missing")
        state = fold_stream(rows)
        assert state is not None
    except UNREADABLE_STREAM as error:
        # the case's own audit is intact: say which case to look at (ids are no personal data)
        log.warning(
            "a case merged into this one cannot be read", case_id=case_id, duplicate=duplicate
        )
        raise StreamDamaged(
            f"a case merged into {case_id} cannot be read as it was written"
        ) from error
    return state.barred_handlers


class PostgresCaseCommands:
    def __init__(self, calendar_stamp_sql: str | None = None) -> None:
        """`calendar_stamp_sql`: a query of the calendar's stamp, read with the lock if given."""
        self._context = dict(_CONTEXT)
        if calendar_stamp_sql is not None:
            self._context["calendar_stamp"] = f"({calendar_stamp_sql})"
        self._statements: dict[tuple[str | None, bool], str] = {}

    async def read_locked(
        self,
        connection: asyncpg.Connection,
        case_id: str,
        head: tuple[int, str] | None,
        confirmation: Confirmation | None,
        idempotency: IdempotentRequest | None,
    ) -> LockedCase:
        known_version, known_hash = head or (0, "")
        arguments: list[Any] = [advisory_locks.CASE_COMMANDS, case_id, known_version, known_hash]
        actor_sql = None
        if confirmation is not None:
            arguments.append(confirmation.argument)
            actor_sql = confirmation.sql(f"${len(arguments)}")
        if idempotency is not None:
            arguments.extend(lookup_values(idempotency))
        statement = self._read_statement(actor_sql, idempotency is not None)
        rows = await connection.fetch(statement, *arguments)
        first = rows[0]
        events = [stored_event(row) for row in rows if row["position"] is not None]
        return LockedCase(
            events=events,
            after_head=head is not None and (not events or events[0].version == known_version + 1),
            respondent_lineage=tuple(first["respondent_lineage"]),
            wrapped_key=first["wrapped_key"],
            policy_stamp=first["policy_stamp"],
            calendar_stamp=first.get("calendar_stamp"),
            actor=first.get("actor"),
            stored_response=stored_response_of(first.get("stored_response")),
        )

    def _read_statement(self, actor_sql: str | None, with_idempotency: bool) -> str:
        """The read's statement, made once for each shape: the actor's confirmation at `$5`
        when there is one, the idempotency key's three parameters after it."""
        statement = self._statements.get((actor_sql, with_idempotency))
        if statement is None:
            context = dict(self._context)
            if actor_sql is not None:
                context["actor"] = f"({actor_sql})"
            if with_idempotency:
                context["stored_response"] = stored_response_sql(5 + (actor_sql is not None))
            columns = ", ".join(f"{sql} AS {name}" for name, sql in context.items())
            statement = (
                f"SELECT c.*, t.* FROM (SELECT {columns}) AS c"
                f" LEFT JOIN LATERAL {_TAIL} AS t ON true ORDER BY t.version"
            )
            self._statements[actor_sql, with_idempotency] = statement
        return statement

    async def write(self, connection: asyncpg.Connection, write: CaseWrite) -> Written:
        version, prev_hash = write.head
        rows = chained_rows(write.stream_id, write.events, version, prev_hash, None)
        guarded = version > 0
        events_sql, columns = insert_statement(rows, guarded)
        arguments: list[Any] = [write.stream_id, rows.recorded_at, *columns]
        if guarded:
            arguments += [version, prev_hash]
        statement = _write_statement(events_sql, len(arguments) + 1)
        arguments += [*write.case_view, *(write.response or (None,) * 7)]
        arguments.append(advisory_locks.CASE_COMMANDS if write.releases_lock else None)
        try:
            positions = (await connection.fetchrow(statement, *arguments))["positions"]
        except asyncpg.UniqueViolationError as error:
            if error.table_name != "events":
                raise
            positions = None
        if not positions:  # the guard held nothing, or the unique key refused: a race lost
            raise ConcurrencyError(write.stream_id, version, None)
        STORE_APPENDS.labels("alone").inc(len(positions))
        return Written(tuple(positions), rows.hashes[-1])

    async def stream_suites(
        self, connection: asyncpg.Connection, stream_id: str
    ) -> list[str | None]:
        return [row[0] for row in await connection.fetch(_STREAM_SUITES, stream_id)]

    async def barred_on_merged_duplicates(
        self, connection: asyncpg.Connection, case_id: str
    ) -> frozenset[str]:
        rows = await connection.fetch(_MERGED_DUPLICATES_EVENTS, case_id)
        barred: set[str] = set()
        for duplicate, found in groupby(rows, key=lambda row: row["duplicate"]):
            barred |= _barred_on_duplicate(case_id, duplicate, [r for r in found if r["version"]])
        return frozenset(barred)

    async def lock_merge_target(self, connection: asyncpg.Connection, case_id: str) -> None:
        try:
            await connection.execute(_LOCK_MERGE_TARGET, advisory_locks.CASE_COMMANDS, case_id)
        except asyncpg.DeadlockDetectedError:
            raise MergeTargetBusy(case_id) from None

    async def release(self, connection: asyncpg.Connection) -> None:
        if connection.is_closed():
            return
        try:
            await connection.execute(_RELEASE)
        except BaseException:
            connection.terminate()
            raise


@functools.cache  # four shapes of events' insert
def _write_statement(events_sql: str, first_parameter: int) -> str:
    """The events' insert (`events_sql`, parameters before `first_parameter`), then the case's
    row, the response to replay and the lock to release (see the module docstring)."""
    after_append = "WHERE EXISTS (SELECT FROM appended)"
    response = first_parameter + 29
    lock = response + 7
    position_header = (
        "jsonb_build_object('Consistency-Position', (SELECT max(position) FROM appended)::text)"
    )
    return f"""
WITH appended AS ({events_sql}),
viewed AS ({upsert_sql(first_parameter, after_append)} RETURNING 1),
saved AS ({save_sql(response, f"{after_append} AND ${response}::text IS NOT NULL", position_header)}
          RETURNING 1),
written AS MATERIALIZED (
    SELECT ARRAY(SELECT position FROM appended ORDER BY version) AS positions,
           (SELECT count(*) FROM viewed) AS viewed,
           (SELECT count(*) FROM saved) AS saved
)
SELECT positions,
       CASE WHEN ${lock}::int IS NOT NULL THEN pg_advisory_unlock(${lock}, hashtext($1)) END
FROM written
"""
