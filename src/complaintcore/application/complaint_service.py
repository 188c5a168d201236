"""Handling complaint commands and case queries over the event store and the domain.

A command runs in one transaction: load the case's stream, fold it, run the domain's `decide`,
append the new events at the version that was read, write the case projection row and (when the
caller sent an `Idempotency-Key`) the response to replay. Either all of it is stored or none.

Personal data: the stream is opened with the case's key (`CaseKeys`), and the new events' personal
fields are sealed under it. A receipt creates the case's key in its own transaction; the erasure
destroys it in the one that appends `PersonalDataErased`: never one without the other.

Commands on one case queue on a transaction-level lock on the case id, taken before the stream is
read: racing commands then apply one after the other, each to the version its predecessor left,
instead of failing their appends and retrying (which, with many racers, could exhaust the
retries). The append's expected-version check stays as the guard against any other writer.

What a process keeps between commands (the calendar, folded case states, a caller's principal) is
confirmed in the command's own transaction: the round trip that takes the case lock also reads the
calendar's stamp and, for a caller known from before, what its credential stands for now.

Why one file of 540 lines: the command transaction (lock, fold, decide, append, project, replay)
is one sequence; its steps are small methods of the one class that keeps it in order.
"""

import re
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

import asyncpg

from complaintcore.application.business_day import shanghai_today
from complaintcore.application.idempotency import (
    IdempotentRequest,
    find_response,
    save_response,
)
from complaintcore.application.policies import command_business_date, decision_authority
from complaintcore.application.policy_store import POLICY_STAMP_SQL, PolicyStore
from complaintcore.application.registration import next_serial
from complaintcore.auth.principals import may_see
from complaintcore.crypto.blind_index import IndexKey
from complaintcore.domain.calendar import WorkingDayCalendar
from complaintcore.domain.commands import (
    ApproveRedress,
    Attribute,
    ErasePersonalData,
    FlagMajor,
    MergeComplaint,
    ReceiveComplaint,
)
from complaintcore.domain.decider import (
    DecisionContext,
    check_merge_target,
    decide,
    evolve,
    fold,
)
from complaintcore.domain.events import PersonalDataErased
from complaintcore.domain.policy import InstitutionPolicy, ResolvedPolicy
from complaintcore.domain.roles import handles_complaints, may_approve_redress, may_run_command
from complaintcore.domain.rules import InvalidCommand, RuleViolation
from complaintcore.domain.state import INITIAL, ComplaintState
from complaintcore.events.case_keys import UNREAD, CaseKeys
from complaintcore.events.codec import domain_events, every_event_sealed, new_events, stream_suite
from complaintcore.events.model import ConcurrencyError, EventMetadata, StoredEvent
from complaintcore.events.store import PostgresEventStore
from complaintcore.events.stream_cipher import StreamCipher
from complaintcore.infra import advisory_locks
from complaintcore.infra.metrics import COMMANDS
from complaintcore.projections.case_view import (
    PERSONAL_FIELDS_SHOWN,
    upsert_case_view,
)
from complaintcore.reference.institutions import lineage_sql

MAX_ATTEMPTS = 10
# A command waiting longer than this for a pool connection is answered 503 (database_unavailable)
# rather than left hanging: the pool is exhausted or the database is not answering.
ACQUIRE_TIMEOUT_S = 10.0
CASE_STATES_KEPT = 10_000
_LOCK_CASE = "pg_advisory_xact_lock($1, hashtext($2)) AS locked"
# The case's wrapped data key, read with the lock: a process meeting the case for the first time
# unwraps it without a round trip of its own.
_WRAPPED_KEY = "(SELECT wrapped FROM case_keys WHERE case_id = $2) AS wrapped_key"
# Whether every event of the stream records a suite (its personal fields sealed).
_STREAM_SUITES = "SELECT metadata->>'cipher_suite' FROM events WHERE stream_id = $1"
# The respondent's lineage, for the institution the case's projection row names: a hint, checked
# against the case's folded state, that saves a round trip. Reference data: the statement's
# snapshot, taken before the lock is granted, is recent enough.
_RESPONDENT_LINEAGE = (
    "ARRAY("
    + lineage_sql("(SELECT respondent_institution FROM case_view WHERE case_id = $2)")
    + ") AS respondent_lineage"
)
# The greatest policy version id: whether the versions a process keeps are still all of them.
_POLICY_STAMP = f"({POLICY_STAMP_SQL}) AS policy_stamp"


class Actor(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def institution(self) -> str | None: ...


class InstitutionLookup(Protocol):
    """Reference reads; those made inside a command's transaction pass its connection."""

    async def is_within(
        self, ancestor: str, code: str, *, connection: asyncpg.Connection | None = None
    ) -> bool: ...
    async def lineage(
        self, code: str, *, connection: asyncpg.Connection | None = None
    ) -> tuple[str, ...]: ...
    async def subtree(
        self, code: str, *, connection: asyncpg.Connection | None = None
    ) -> list[str]: ...


class ActorConfirmation(Protocol):
    """A principal known from before (see `tokens.TokenCheck`), which the database confirms in
    the round trip that takes the case lock: `sql(parameter)` is a scalar subquery reading
    `argument` as `parameter`; `confirms` judges its value."""

    @property
    def argument(self) -> Any: ...
    def sql(self, parameter: str) -> str: ...
    def confirms(self, current: Any) -> bool: ...


class CalendarSource(Protocol):
    async def working_day_calendar(self) -> WorkingDayCalendar: ...


class StampedCalendarSource(Protocol):
    """A calendar source that can tell cheaply whether the calendar changed (see `calendars`)."""

    stamp_sql: str

    async def working_day_calendar(
        self, *, stamp: str | None = None, connection: asyncpg.Connection | None = None
    ) -> WorkingDayCalendar: ...


@dataclass(frozen=True)
class RequestInfo:
    correlation_id: str | None = None
    client: str | None = None
    idempotency: IdempotentRequest | None = None


@dataclass(frozen=True)
class Respondent:
    institution: str
    superior: str | None
    """The institution's parent: None for a head office or an unknown code."""
    lineage: tuple[str, ...] = ()
    """The institution, its parent, … up to its head office: whose policies judge the case."""


@dataclass(frozen=True)
class Rendered:
    status_code: int
    body: Any
    headers: dict[str, str]


Render = Callable[[ComplaintState, date, InstitutionPolicy], Rendered]
# The response header naming a command's commit position: the global position of the last event
# it wrote (API: a later read carrying it is served only where that write is visible).
CONSISTENCY_POSITION = "Consistency-Position"


class ActorNotConfirmed(Exception):
    """The caller's credential no longer stands for the principal it was taken for (revoked)."""


class CaseNotFound(Exception):
    """No such case, or not one the caller may see (never leak existence)."""


class VersionNotFound(Exception):
    pass


class PreconditionFailed(Exception):
    def __init__(self, current_version: int) -> None:
        super().__init__(f"the case is at version {current_version}")
        self.current_version = current_version


class IdempotencyKeyReused(Exception):
    """The same key was sent before with another request body."""


class NotPermitted(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UnknownInstitution(Exception):
    pass


class PersonalDataNotEncrypted(Exception):
    """The case has events stored before encryption: destroying its key would not erase their
    plaintext, so it is not erased (409 `personal_data_not_encrypted`)."""


@dataclass(frozen=True)
class CaseAudit:
    state: ComplaintState | None
    events: list[StoredEvent]


class ComplaintService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: PostgresEventStore,
        institutions: InstitutionLookup,
        calendars: CalendarSource | StampedCalendarSource,
        case_keys: CaseKeys,
        index_key: IndexKey,
        today: Callable[[], date] = shanghai_today,
        policies: PolicyStore | None = None,
    ) -> None:
        """`index_key`: the blind index's key, loaded at start (`case_view.load_index_key`)."""
        self._pool = pool
        self._store = store
        self._case_keys = case_keys
        self._index_key = index_key
        self._institutions = institutions
        self._calendars = calendars
        self._policies = policies or PolicyStore(pool)
        # A source without a stamp (a calendar loaded once for a run) is simply asked each time.
        stamp_sql: str | None = getattr(calendars, "stamp_sql", None)
        self._calendar_is_stamped = stamp_sql is not None
        calendar_stamp = [f"({stamp_sql}) AS calendar_stamp"] if stamp_sql else []
        self._lock_case_sql = "SELECT " + ", ".join(
            [_LOCK_CASE, _RESPONDENT_LINEAGE, _WRAPPED_KEY, _POLICY_STAMP, *calendar_stamp]
        )
        self._today = today
        self._states = KeptStates(CASE_STATES_KEPT)

    async def policy_in_force(self, institution: str, on: date | None = None) -> ResolvedPolicy:
        """The policy in force at `institution` on `on` (None: today)."""
        return await self._policies.in_force(institution, on or self._today())

    async def receive(
        self,
        actor: Actor,
        institution: str,
        received_on: date,
        build: Callable[[str, str], ReceiveComplaint],
        request: RequestInfo,
        render: Render,
    ) -> Rendered:
        """Register a complaint: allocate its id and registration number, then decide."""
        with _counted(ReceiveComplaint):
            return await self._receive(actor, institution, received_on, build, request, render)

    async def _receive(
        self,
        actor: Actor,
        institution: str,
        received_on: date,
        build: Callable[[str, str], ReceiveComplaint],
        request: RequestInfo,
        render: Render,
    ) -> Rendered:
        _require_case_role(actor)
        # One read for existence, visibility and the superior, as for a command on a case.
        lineage = await self._institutions.lineage(institution)
        if not lineage or not await may_see(actor, institution, _KnownLineage(lineage)):
            raise UnknownInstitution(institution)
        respondent = Respondent(institution, _superior_in(lineage), lineage)
        case_id = str(uuid.uuid4())

        async def attempt(connection: asyncpg.Connection) -> Rendered:
            calendar = await self._calendar(connection, None)
            serial = await next_serial(connection, institution, received_on)
            policy_stamp = await connection.fetchval(POLICY_STAMP_SQL)
            policy = await self._policies.in_force_along(
                lineage, received_on, policy_stamp, connection=connection
            )
            registration_no = policy.policy.registration_number(institution, received_on, serial)
            command = build(case_id, registration_no)
            return await self._decide_and_store(
                connection,
                actor,
                None,
                None,
                command,
                respondent,
                calendar,
                request,
                render,
                policy_stamp,
            )

        return await self._run(actor, request, attempt, UnknownInstitution(institution))

    async def handle(
        self,
        actor: Actor,
        case_id: str,
        command: Any,
        if_match: int | None,
        request: RequestInfo,
        render: Render,
        confirmation: ActorConfirmation | None = None,
    ) -> Rendered:
        """Run `command` on the case, retrying a lost race unless the caller pinned a version.

        With a `confirmation`, `actor` is acted for only if the database confirms it in the
        command's transaction; else `ActorNotConfirmed`, and nothing is stored."""
        with _counted(type(command)):
            return await self._handle(
                actor, case_id, command, if_match, request, render, confirmation
            )

    async def _handle(
        self,
        actor: Actor,
        case_id: str,
        command: Any,
        if_match: int | None,
        request: RequestInfo,
        render: Render,
        confirmation: ActorConfirmation | None,
    ) -> Rendered:
        _require_command_role(actor, command)

        async def attempt(connection: asyncpg.Connection) -> Rendered:
            locked = await self._lock_case(connection, case_id, confirmation)
            calendar = await self._calendar(connection, locked.get("calendar_stamp"))
            state, cipher, lineage = await self._visible_state(
                connection,
                actor,
                case_id,
                tuple(locked["respondent_lineage"]),
                locked["wrapped_key"],
            )
            if isinstance(command, ApproveRedress) and not may_approve_redress(actor.role):
                # after the visibility check: 404 outside one's subtree, 403 where one sees it
                raise NotPermitted("forbidden", "only a supervisor approves a redress")
            if if_match is not None and if_match != state.version:
                raise PreconditionFailed(state.version)
            if isinstance(command, MergeComplaint) and command.into != state.id:
                check_merge_target(await self._merge_target(connection, actor, command.into))
            respondent = Respondent(state.respondent_institution, _superior_in(lineage), lineage)
            return await self._decide_and_store(
                connection,
                actor,
                state,
                cipher,
                command,
                respondent,
                calendar,
                request,
                render,
                locked["policy_stamp"],
            )

        for _ in range(MAX_ATTEMPTS):
            try:
                return await self._run(actor, request, attempt, CaseNotFound(case_id))
            except ConcurrencyError as error:
                if if_match is not None:
                    raise PreconditionFailed(await self._version_after(error)) from None
        raise ConcurrencyError(case_id, 0, None)

    async def _lock_case(
        self,
        connection: asyncpg.Connection,
        case_id: str,
        confirmation: ActorConfirmation | None,
    ) -> asyncpg.Record:
        """Wait for commands already running on the case (the lock is released when the
        transaction ends). The same round trip confirms the actor and reads the calendar's
        `calendar_stamp`, the `respondent_lineage` and the `policy_stamp`."""
        if confirmation is None:
            return await connection.fetchrow(
                self._lock_case_sql, advisory_locks.CASE_COMMANDS, case_id
            )
        row = await connection.fetchrow(
            f"{self._lock_case_sql}, ({confirmation.sql('$3')}) AS actor",
            advisory_locks.CASE_COMMANDS,
            case_id,
            confirmation.argument,
        )
        if not confirmation.confirms(row["actor"]):
            raise ActorNotConfirmed()
        return row

    async def _calendar(
        self, connection: asyncpg.Connection, stamp: str | None
    ) -> WorkingDayCalendar:
        if not self._calendar_is_stamped:
            return await self._calendars.working_day_calendar()
        calendars: StampedCalendarSource = self._calendars  # type: ignore[assignment]
        return await calendars.working_day_calendar(stamp=stamp, connection=connection)

    async def _version_after(self, refused: ConcurrencyError) -> int:
        """The stream's version after a refused append (read now when the refusal could not)."""
        if refused.actual_version is not None:
            return refused.actual_version
        return await self._store.stream_version(refused.stream_id)

    async def case(
        self, actor: Actor, case_id: str, as_of_version: int | None = None
    ) -> tuple[ComplaintState, date, InstitutionPolicy]:
        events = await self.case_events(actor, case_id)
        if as_of_version is not None:
            if as_of_version > len(events):
                raise VersionNotFound(as_of_version)
            events = events[:as_of_version]
        cipher = await self.stream_cipher(case_id, events)
        # the document shows the masked complainant and no free text: nothing else is opened
        state = fold(domain_events(events, cipher, PERSONAL_FIELDS_SHOWN))
        assert state is not None
        today = self._today()
        policy = await self._policies.in_force(state.respondent_institution, today)
        return state, today, policy.policy

    async def stream_cipher(
        self, case_id: str, stored: Sequence[StoredEvent]
    ) -> StreamCipher | None:
        """The cipher that opens `stored` (the case's events), None for a stream written
        before encryption. A connection is taken only when the key is not cached."""
        suite = stream_suite(stored)
        if suite is None:
            return None
        cached = self._case_keys.cached_cipher(case_id, suite)
        if cached is not None:
            return cached
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as acquired:
            return await self._case_keys.cipher_for(acquired, case_id, suite)

    async def case_events(
        self, actor: Actor, case_id: str, replica: asyncpg.Pool | None = None
    ) -> list[StoredEvent]:
        """The whole stream, after checking the caller may see the case; read on `replica`
        (a read replica's pool) when given."""
        if replica is None:
            events = await self._store.read_stream(case_id)
        else:
            events = await self._store.read_stream_on_replica(replica, case_id)
        if not events:
            raise CaseNotFound(case_id)
        institution = events[0].data.get("respondent_institution", "")
        if not await self._may_see(actor, institution):
            raise CaseNotFound(case_id)
        return events

    async def _run(
        self,
        actor: Actor,
        request: RequestInfo,
        attempt: Callable[[asyncpg.Connection], Any],
        not_visible: Exception,
    ) -> Rendered:
        """`attempt` in a transaction, or the stored response of its idempotency key (raising
        `not_visible` when the actor may no longer see the case it shows)."""
        # Everything the holder of this connection reads goes through it: a second acquire while
        # holding it could wait forever once every connection is held by a command doing the same.
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as connection:
            replay = await self._replay(connection, actor, request, not_visible)
            if replay is not None:
                return replay
            try:
                async with connection.transaction():
                    rendered: Rendered = await attempt(connection)
                    if request.idempotency is not None:
                        await save_response(
                            connection,
                            request.idempotency,
                            rendered.status_code,
                            rendered.body,
                            rendered.headers,
                        )
                    return rendered
            except asyncpg.UniqueViolationError as error:
                if error.table_name != "idempotent_requests":
                    raise
            # Another request with the same key committed first: answer as it did.
            replay = await self._replay(connection, actor, request, not_visible)
            assert replay is not None
            return replay

    async def _replay(
        self,
        connection: asyncpg.Connection,
        actor: Actor,
        request: RequestInfo,
        not_visible: Exception,
    ) -> Rendered | None:
        """The stored response of the request's key, if any, shown only to an actor who may
        still see its case (the institution tree can change between the two requests)."""
        if request.idempotency is None:
            return None
        stored = await find_response(connection, request.idempotency)
        if stored is None:
            return None
        if stored.request_hash != request.idempotency.request_hash:
            raise IdempotencyKeyReused(request.idempotency.key)
        respondent = stored.body.get("respondent_institution", "")
        if not await self._may_see(actor, respondent, connection):
            raise not_visible
        return Rendered(stored.status_code, stored.body, stored.headers)

    async def _decide_and_store(
        self,
        connection: asyncpg.Connection,
        actor: Actor,
        state: ComplaintState | None,
        cipher: StreamCipher | None,
        command: Any,
        respondent: Respondent,
        calendar: WorkingDayCalendar,
        request: RequestInfo,
        render: Render,
        policy_stamp: int | None,
    ) -> Rendered:
        """Decide `command` under the policy in force at the respondent on its business date,
        store what it produces, and render the case as read today."""
        today = self._today()
        judged, read_today = await self._policies_judging(
            connection, respondent, command_business_date(command, today), today, policy_stamp
        )
        context = DecisionContext(
            today=today,
            calendar=calendar,
            policy=judged.policy,
            actor_id=actor.id,
            actor_role=actor.role,
            superior_of_respondent=respondent.superior,
            **await self._authority(connection, actor, command, respondent, judged),
        )
        events = decide(state, command, context)
        metadata = EventMetadata(
            actor_id=actor.id,
            actor_role=actor.role,
            institution=actor.institution,
            correlation_id=request.correlation_id,
            idempotency_key=request.idempotency.key if request.idempotency else None,
            client=request.client,
            policy_version=judged.version,
        )
        stream_id = state.id if state is not None else command.case_id
        expected_version = state.version if state is not None else 0
        erasing = any(isinstance(event, PersonalDataErased) for event in events)
        if erasing and not every_event_sealed(
            row[0] for row in await connection.fetch(_STREAM_SUITES, stream_id)
        ):
            raise PersonalDataNotEncrypted(stream_id)
        if cipher is None:  # a receipt, or a stream written before encryption
            cipher = await self._case_keys.new_cipher(connection, stream_id)
        stored = new_events(events, metadata, cipher, expected_version + 1)
        if erasing:  # the key goes in the transaction that appends the erasure, or not at all
            await self._case_keys.destroy(connection, stream_id)
        # The whole transaction is retried (or answered 412) on a refusal: no savepoint needed.
        appended = await self._store.append_without_savepoint(
            connection, stream_id, stored, expected_version
        )
        new_state = state
        for event in events:
            new_state = evolve(new_state, event)
        assert new_state is not None
        await upsert_case_view(connection, new_state, self._index_key)
        rendered = render(new_state, today, read_today.policy)
        # where a read replica must have come to show this write (infra/read_replicas.py)
        rendered.headers[CONSISTENCY_POSITION] = str(max(appended.positions))
        return rendered

    async def _authority(
        self,
        connection: asyncpg.Connection,
        actor: Actor,
        command: Any,
        respondent: Respondent,
        judged: ResolvedPolicy,
    ) -> dict[str, Any]:
        """`policies.decision_authority` for this caller and case; an attribution reads the
        case's whole tree (one read more, for that command only)."""
        lineage = respondent.lineage
        tree: frozenset[str] = frozenset()
        if isinstance(command, Attribute) and lineage:
            tree = frozenset(await self._institutions.subtree(lineage[-1], connection=connection))
        return decision_authority(judged, actor.role, actor.institution, lineage, tree)

    async def _policies_judging(
        self,
        connection: asyncpg.Connection,
        respondent: Respondent,
        business_date: date,
        today: date,
        policy_stamp: int | None,
    ) -> tuple[ResolvedPolicy, ResolvedPolicy]:
        """The policies in force at the respondent on the command's business date and today
        (the second from the versions the first read: no round trip)."""
        judged = await self._policies.in_force_along(
            respondent.lineage, business_date, policy_stamp, connection=connection
        )
        if business_date == today:
            return judged, judged
        read_today = await self._policies.in_force_along(
            respondent.lineage, today, policy_stamp, connection=connection
        )
        return judged, read_today

    async def _visible_state(
        self,
        connection: asyncpg.Connection,
        actor: Actor,
        case_id: str,
        lineage_read: tuple[str, ...] = (),
        wrapped_key: Any = UNREAD,
    ) -> tuple[ComplaintState, StreamCipher | None, tuple[str, ...]]:
        """The case's state, its cipher and its respondent's lineage (read once for visibility
        and the superior; `lineage_read` already, when it is the respondent's), when the caller
        may see the case."""
        state, cipher = await self._current_state(connection, case_id, wrapped_key)
        if state is None:
            raise CaseNotFound(case_id)
        respondent = state.respondent_institution
        lineage = (
            lineage_read
            if lineage_read[:1] == (respondent,)
            else await self._institutions.lineage(respondent, connection=connection)
        )
        if not await may_see(actor, respondent, _KnownLineage(lineage)):
            raise CaseNotFound(case_id)
        return state, cipher, lineage

    async def _current_state(
        self, connection: asyncpg.Connection, case_id: str, wrapped_key: Any = UNREAD
    ) -> tuple[ComplaintState | None, StreamCipher | None]:
        """The case folded from its stream, and the cipher that opened it: from the state kept
        of it when that is still the stream's beginning (only the events after it are read and
        folded), else from scratch."""
        kept = self._states.get(case_id)
        if kept is not None:
            version, hash_, state, suite = kept
            newer = await self._store.read_stream_after(
                case_id, version, hash_, connection=connection
            )
            if newer is not None:
                return await self._keep(connection, case_id, state, newer, suite, wrapped_key)
        stored = await self._store.read_stream(case_id, connection=connection)
        return await self._keep(connection, case_id, INITIAL, stored, None, wrapped_key)

    async def _keep(
        self,
        connection: asyncpg.Connection,
        case_id: str,
        state: ComplaintState | None,
        stored: Sequence[StoredEvent],
        suite: str | None,
        wrapped_key: Any = UNREAD,
    ) -> tuple[ComplaintState | None, StreamCipher | None]:
        suite = stream_suite(stored) or suite
        cipher = None
        if suite:
            cipher = await self._case_keys.cipher_for(connection, case_id, suite, wrapped_key)
        for event in domain_events(stored, cipher):
            state = evolve(state, event)
        if stored and state is not None:
            self._states.keep(case_id, stored[-1].version, stored[-1].hash, state, suite)
        return state, cipher

    async def _merge_target(
        self, connection: asyncpg.Connection, actor: Actor, case_id: str
    ) -> ComplaintState | None:
        try:
            state, _, _ = await self._visible_state(connection, actor, case_id)
        except CaseNotFound:
            return None
        return state

    async def _may_see(
        self, actor: Actor, institution: str, connection: asyncpg.Connection | None = None
    ) -> bool:
        return await may_see(actor, institution, self._institutions, connection=connection)


class KeptStates:
    """The last folded states of recently used cases, each with the version and hash of the event
    it was folded up to: a starting point the stream is checked against, never the truth."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._states: OrderedDict[str, tuple[int, str, ComplaintState, str | None]] = OrderedDict()

    def get(self, case_id: str) -> tuple[int, str, ComplaintState, str | None] | None:
        """(version, hash, state, the stream's suite) as kept, if it is."""
        kept = self._states.get(case_id)
        if kept is not None:
            self._states.move_to_end(case_id)
        return kept

    def keep(
        self, case_id: str, version: int, hash_: str, state: ComplaintState, suite: str | None
    ) -> None:
        self._states[case_id] = (version, hash_, state, suite)
        self._states.move_to_end(case_id)
        if len(self._states) > self._capacity:
            self._states.popitem(last=False)


@dataclass(frozen=True)
class _KnownLineage:
    """The institution tree as far as one institution's lineage, already read (`may_see` asks
    only whether the actor's institution is in it)."""

    lineage: tuple[str, ...]

    async def is_within(
        self, ancestor: str, code: str, *, connection: asyncpg.Connection | None = None
    ) -> bool:
        assert not self.lineage or code == self.lineage[0], "only this lineage is known"
        return ancestor in self.lineage


def _superior_in(lineage: tuple[str, ...]) -> str | None:
    """The parent in an institution's lineage: None for a head office."""
    return lineage[1] if len(lineage) > 1 else None


def _require_case_role(actor: Actor) -> None:
    if not handles_complaints(actor.role):
        raise NotPermitted("forbidden", f"a {actor.role} cannot act on complaints")


def _require_command_role(actor: Actor, command: Any) -> None:
    erases = isinstance(command, ErasePersonalData)
    if not may_run_command(
        actor.role, designates_major=isinstance(command, FlagMajor), erases=erases
    ):
        raise NotPermitted(
            "forbidden",
            "only an admin erases a case's personal data"
            if erases
            else f"a {actor.role} cannot act on complaints",
        )


_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


@contextmanager
def _counted(command_type: type) -> Iterator[None]:
    """Count the command's outcome (`complaintcore_commands_total`): accepted, refused by a rule
    (with its code), invalid, in conflict (a lost race or a stale If-Match), or an error. A
    token not confirmed is not counted: the routes run the command again (api/command_lane.py)."""
    name = _SNAKE.sub("_", command_type.__name__).lower()
    outcome: str | None = "error"
    code = ""
    try:
        yield
        outcome = "accepted"
    except ActorNotConfirmed:
        outcome = None
        raise
    except RuleViolation as refused:
        outcome, code = "refused", refused.code
        raise
    except NotPermitted as refused:
        outcome, code = "refused", refused.code
        raise
    except CaseNotFound:
        outcome, code = "refused", "case_not_found"
        raise
    except UnknownInstitution:
        outcome, code = "refused", "unknown_institution"
        raise
    except InvalidCommand:
        outcome = "invalid"
        raise
    except (PreconditionFailed, ConcurrencyError, IdempotencyKeyReused):
        outcome = "conflict"
        raise
    finally:
        if outcome is not None:
            COMMANDS.labels(name, outcome, code).inc()
