"""Handling complaint commands and case queries over the event store and the domain.

A command on a case is two statements (`case_command_store`): one takes the case's lock and
reads what the decision needs (the stream after the state kept of it, and the rest below), one
appends the new events at the version that was read, writes the case projection row and (when the
caller sent an `Idempotency-Key`) the response to replay, and releases the lock. Either all of it
is stored or none. A receipt, which draws a registration number, runs in one transaction.

Personal data: the stream is opened with the case's key (`CaseKeys`), and the new events' personal
fields are sealed under it. A receipt creates the case's key in its own transaction; the erasure
destroys it in the one that appends `PersonalDataErased`: never one without the other.

Commands on one case queue on a lock on the case id, taken before the stream is read: racing
commands then apply one after the other, each to the version its predecessor left, instead of
failing their appends and retrying (which, with many racers, could exhaust the retries). The
append's expected-version check stays as the guard against any other writer.

What a process keeps between commands (the calendar, folded case states, a caller's principal) is
confirmed in the command's first statement: the one that takes the case lock also reads the
calendar's stamp and, for a caller known from before, what its credential stands for now.

Why one file of 800 lines: a command (lock, fold, decide, append, project, replay) is one
sequence; its steps are small methods of the one class that keeps it in order.
"""

import functools
import re
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import asyncpg
import structlog

from complaintcore.application.business_day import shanghai_today
from complaintcore.application.case_audit import respondent_of
from complaintcore.application.case_command_store import (
    CaseCommandStore,
    CaseWrite,
    LockedCase,
    MergeTargetBusy,
    PostgresCaseCommands,
)
from complaintcore.application.idempotency import (
    IdempotentRequest,
    StoredResponse,
    erase_stored_responses,
    find_response,
    saved_values,
)
from complaintcore.application.policies import (
    command_business_date,
    decision_authority,
    limit_lineage,
)
from complaintcore.application.policy_store import POLICY_STAMP_SQL, PolicyStore
from complaintcore.application.registration import next_serial
from complaintcore.auth.principals import may_see
from complaintcore.crypto.blind_index import IndexKey
from complaintcore.crypto.key_cache import KEY_MAX_AGE_S
from complaintcore.domain.calendar import WorkingDayCalendar
from complaintcore.domain.commands import (
    ApproveRedress,
    Attribute,
    DecideReview,
    ErasePersonalData,
    FlagMajor,
    MergeComplaint,
    ReceiveComplaint,
)
from complaintcore.domain.decider import (
    DecisionContext,
    check_merge_target,
    check_review_decider,
    decide,
    evolve,
    fold,
    needs_merged_duplicates,
)
from complaintcore.domain.events import PersonalDataErased
from complaintcore.domain.policy import InstitutionPolicy, ResolvedPolicy
from complaintcore.domain.roles import handles_complaints, may_approve_redress, may_run_command
from complaintcore.domain.rules import InvalidCommand, RuleViolation
from complaintcore.domain.state import INITIAL, ComplaintState, as_erased
from complaintcore.events.case_keys import UNREAD, CaseKeys
from complaintcore.events.codec import (
    domain_events,
    every_event_sealed,
    new_events,
    records_erasure,
    require_key_unless_erased,
    require_versions_in_a_row,
    stream_and_cipher,
    stream_suite,
)
from complaintcore.events.model import (
    GENESIS_HASH,
    ConcurrencyError,
    EventMetadata,
    StoredEvent,
    new_causation_id,
)
from complaintcore.events.store import PostgresEventStore
from complaintcore.events.stream_cipher import StreamCipher
from complaintcore.infra.aged_cache import AgedCache
from complaintcore.infra.metrics import COMMANDS
from complaintcore.projections.case_view import (
    PERSONAL_FIELDS_SHOWN,
    case_view_values,
    forget_rebuilding_rows,
)

log = structlog.get_logger("complaintcore.commands")

MAX_ATTEMPTS = 10
# A command waiting longer than this for a pool connection is answered 503 (database_unavailable)
# rather than left hanging: the pool is exhausted or the database is not answering.
ACQUIRE_TIMEOUT_S = 10.0
CASE_STATES_KEPT = 10_000
# as long as a data key is cached: a kept state holds the plaintext the key opened
KEPT_STATE_MAX_AGE_S = KEY_MAX_AGE_S


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
    causation_id: str = field(default_factory=new_causation_id)


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
    """The same key was sent before with another request body, or (`forgotten`) for a case
    whose personal data has been erased since, the first request's fingerprint with it."""

    def __init__(self, key: str, forgotten: bool = False) -> None:
        super().__init__(key)
        self.forgotten = forgotten


# What a command sent again gets when its first sending, queued ahead of it, did what it asks:
# the domain's refusal, or the version its If-Match named moved on (see `_run`).
_REFUSALS = (RuleViolation, InvalidCommand, PreconditionFailed)


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
        commands: CaseCommandStore | None = None,
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
        self._commands = commands or PostgresCaseCommands(stamp_sql)
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
                command,
                respondent,
                calendar,
                request,
                render,
                policy_stamp,
            )

        return await self._run(
            actor, request, attempt, UnknownInstitution(institution), in_transaction=True
        )

    async def handle(
        self,
        actor: Actor,
        case_id: str,
        command: Any,
        if_match: Collection[int] | None,
        request: RequestInfo,
        render: Render,
        confirmation: ActorConfirmation | None = None,
    ) -> Rendered:
        """Run `command` on the case, retrying a lost race unless the caller pinned versions
        (`if_match`: the versions the case may be at, from `If-Match`).

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
        if_match: Collection[int] | None,
        request: RequestInfo,
        render: Render,
        confirmation: ActorConfirmation | None,
    ) -> Rendered:

        async def attempt(connection: asyncpg.Connection) -> Rendered:
            kept = self._states.get(case_id)
            try:
                locked = await self._commands.read_locked(
                    connection,
                    case_id,
                    kept[:2] if kept else None,
                    confirmation,
                    request.idempotency,
                )
                if confirmation is not None and not confirmation.confirms(locked.actor):
                    raise ActorNotConfirmed()
                rendered = await self._decide_locked(
                    connection, actor, case_id, command, if_match, request, render, locked, kept
                )
                if isinstance(command, MergeComplaint):
                    await self._release_after_write(connection)
                return rendered
            except BaseException:
                # a refusal, a lost race, a replay: nothing was written, the lock is still held;
                # or the read was given up (a timeout behind another command's commit) after it
                # took the lock, a session lock that outlives the statement
                await self._commands.release(connection)
                raise

        for _ in range(MAX_ATTEMPTS):
            try:
                return await self._run(actor, request, attempt, CaseNotFound(case_id))
            except ConcurrencyError as error:
                if if_match is not None:
                    moved_to = await self._version_after(error)
                    if moved_to not in if_match:
                        raise PreconditionFailed(moved_to) from None
                    # moved to a version the caller also listed: decided again there
            except MergeTargetBusy:
                pass  # the case itself has not moved on (If-Match holds): decided again
        raise ConcurrencyError(case_id, 0, None)

    async def _release_after_write(self, connection: asyncpg.Connection) -> None:
        """Give back what a command still holds once its write has committed (a merge's target
        lock): a failure closes the connection, and the lock ends with its session, but the
        command's answer stands (it is stored)."""
        try:
            await self._commands.release(connection)
        except Exception as error:
            log.warning(
                "lock not released after a write; connection closed", error=type(error).__name__
            )

    async def _decide_locked(
        self,
        connection: asyncpg.Connection,
        actor: Actor,
        case_id: str,
        command: Any,
        if_match: Collection[int] | None,
        request: RequestInfo,
        render: Render,
        locked: LockedCase,
        kept: "KeptState | None",
    ) -> Rendered:
        """The command on the case read under its lock (`locked`, after the state `kept` of it);
        the caller releases the lock if this raises."""
        if locked.stored_response is not None:
            replay = await self._replayed(
                connection, actor, request, locked.stored_response, CaseNotFound(case_id)
            )
            # a replay answers only what the request would be let do now: the principal's role
            # may have changed since (a supervisor's id re-issued as staff)
            _require_command_role(actor, command)
            await self._commands.release(connection)
            return replay
        calendar = await self._calendar(connection, locked.calendar_stamp)
        current, lineage = await self._visible_current(connection, actor, case_id, locked, kept)
        state = current.state
        # after the visibility check: 404 outside one's subtree, 403 where one sees it (API.md)
        _require_command_role(actor, command)
        if if_match is not None and state.version not in if_match:
            raise PreconditionFailed(state.version)
        judge_after: Callable[[], None] | None = None
        if isinstance(command, MergeComplaint) and command.into != state.id:
            target = await self._merge_target(connection, actor, command.into)
            judge_after = functools.partial(check_merge_target, target)
        elif isinstance(command, DecideReview):
            judge_after = functools.partial(check_review_decider, state, actor.institution, lineage)
        barred_elsewhere = frozenset[str]()
        if needs_merged_duplicates(command):
            # a round trip of its own, after the lock: a merge into this case committed while
            # the lock was awaited is seen
            barred_elsewhere = await self._commands.barred_on_merged_duplicates(connection, case_id)
        respondent = Respondent(state.respondent_institution, _superior_in(lineage), lineage)
        return await self._decide_and_store(
            connection,
            actor,
            current,
            command,
            respondent,
            calendar,
            request,
            render,
            locked.policy_stamp,
            judge_after,
            barred_elsewhere,
        )

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
        # the whole stream's cipher: a case erased after the version asked for opens at none
        events, cipher = await self.opened_stream(
            actor, case_id, await self.case_events(actor, case_id)
        )
        erased = records_erasure(events)
        if as_of_version is not None:
            # by version, not by place: a stream with a version missing (altered behind the
            # store's back; the audit names it) never passes off a later state as this one
            if not any(event.version == as_of_version for event in events):
                raise VersionNotFound(as_of_version)
            events = [event for event in events if event.version <= as_of_version]
        require_versions_in_a_row(events)
        # the document shows the masked complainant and no free text: nothing else is opened
        state = fold(domain_events(events, cipher, PERSONAL_FIELDS_SHOWN))
        assert state is not None
        if erased and not state.personal_data_erased:
            state = as_erased(state)
        today = self._today()
        policy = await self._policies.in_force(state.respondent_institution, today)
        return state, today, policy.policy

    async def opened_stream(
        self, actor: Actor, case_id: str, events: list[StoredEvent]
    ) -> tuple[list[StoredEvent], StreamCipher | None]:
        """`events` (the case's stream as read) and the cipher that opens them, agreeing
        (`codec.stream_and_cipher`: read again here, on the primary, when they disagree)."""
        return await stream_and_cipher(
            case_id,
            events,
            lambda: self.case_events(actor, case_id),
            lambda stored: self.stream_cipher(case_id, stored),
        )

    async def stream_cipher(
        self, case_id: str, stored: Sequence[StoredEvent]
    ) -> StreamCipher | None:
        """The cipher that opens `stored` (the case's events), None for a stream written
        before encryption. A connection is taken only when the key is not cached. A stream
        that records its erasure gets no key, even one this process cached before another
        erased the case: the event, not the cache, is the authority (`crypto.key_cache`)."""
        suite = stream_suite(stored)
        if suite is None:
            return None
        if records_erasure(stored):
            return self._case_keys.erased_cipher(case_id, suite)
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
        if not await self._may_see(actor, respondent_of(events)):
            raise CaseNotFound(case_id)
        return events

    async def _run(
        self,
        actor: Actor,
        request: RequestInfo,
        attempt: Callable[[asyncpg.Connection], Any],
        not_visible: Exception,
        *,
        in_transaction: bool = False,
    ) -> Rendered:
        """`attempt` (in a transaction if asked: it finds the stored response of the request's
        key itself otherwise), or the stored response of its idempotency key (raising
        `not_visible` when the actor may no longer see the case it shows)."""
        # Everything the holder of this connection reads goes through it: a second acquire while
        # holding it could wait forever once every connection is held by a command doing the same.
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as connection:
            try:
                if not in_transaction:
                    return await attempt(connection)
                replay = await self._replay(connection, actor, request, not_visible)
                if replay is not None:
                    return replay
                async with connection.transaction():
                    return await attempt(connection)
            except asyncpg.UniqueViolationError as error:
                if error.table_name != "idempotent_requests":
                    raise
            except (*_REFUSALS, ConcurrencyError):
                # Refused or beaten to the case's head, perhaps because a request with the same
                # key, queued ahead of this one on the case's lock or committing as this one read
                # the case, did it (its response was not there when this one looked): answer as
                # it did, or else refuse (a lost race is retried, or 412 with If-Match).
                replay = await self._replay(connection, actor, request, not_visible)
                if replay is None:
                    raise
                return replay
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
        """The stored response of the request's key, if any (see `_replayed`)."""
        if request.idempotency is None:
            return None
        stored = await find_response(connection, request.idempotency)
        if stored is None:
            return None
        return await self._replayed(connection, actor, request, stored, not_visible)

    async def _replayed(
        self,
        connection: asyncpg.Connection,
        actor: Actor,
        request: RequestInfo,
        stored: StoredResponse,
        not_visible: Exception,
    ) -> Rendered:
        """The stored response, shown only to an actor who may still see its case (the
        institution tree can change between the two requests)."""
        assert request.idempotency is not None
        respondent = stored.body.get("respondent_institution", "")
        visible = await self._may_see(actor, respondent, connection)
        # An erased case's fingerprint matches no request: out of sight, it is answered as the
        # same request is, so that whether that case was erased is not told (a review pass).
        if not visible and (stored.forgotten or stored.answers(request.idempotency)):
            raise not_visible
        if not stored.answers(request.idempotency):
            # The key is the caller's own: sent with another request it is refused as reused,
            # whether its first case is still in sight or not (found by a review pass: once the
            # tree had moved that case away, reusing the key on a visible case answered that
            # this case did not exist).
            raise IdempotencyKeyReused(request.idempotency.key, stored.forgotten)
        return Rendered(stored.status_code, stored.body, stored.headers)

    async def _decide_and_store(
        self,
        connection: asyncpg.Connection,
        actor: Actor,
        current: "_Current | None",
        command: Any,
        respondent: Respondent,
        calendar: WorkingDayCalendar,
        request: RequestInfo,
        render: Render,
        policy_stamp: int | None,
        judge_after: Callable[[], None] | None = None,
        barred_on_merged_duplicates: frozenset[str] = frozenset(),
    ) -> Rendered:
        """Decide `command` under the policy in force at the respondent on its business date,
        store what it produces, and render the case as read today. `current`: the case as read
        under its lock (None for a receipt, in its transaction); `judge_after`: what is judged
        once the case's own rules pass, a merge's target or who decides a review (an erased or
        closed duplicate is refused as such, whatever it names)."""
        today = self._today()
        business_date = command_business_date(command, today)
        judged, read_today = await self._policies_judging(
            connection, respondent, business_date, today, policy_stamp
        )
        state = current.state if current is not None else None
        context = DecisionContext(
            today=today,
            calendar=calendar,
            policy=judged.policy,
            actor_id=actor.id,
            actor_role=actor.role,
            superior_of_respondent=respondent.superior,
            barred_on_merged_duplicates=barred_on_merged_duplicates,
            **await self._authority(
                connection, actor, command, respondent, (judged, business_date, policy_stamp)
            ),
        )
        events = decide(state, command, context)
        if judge_after is not None:
            judge_after()
        metadata = EventMetadata(
            actor_id=actor.id,
            actor_role=actor.role,
            institution=actor.institution,
            correlation_id=request.correlation_id,
            causation_id=request.causation_id,
            idempotency_key=request.idempotency.key if request.idempotency else None,
            client=request.client,
            policy_version=judged.version,
        )
        new_state = state
        for event in events:
            new_state = evolve(new_state, event)
        assert new_state is not None
        rendered = render(new_state, today, read_today.policy)
        stream_id = new_state.id
        head = current.head if current is not None else (0, GENESIS_HASH)
        cipher = current.cipher if current is not None else None
        erasing = any(isinstance(event, PersonalDataErased) for event in events)
        if erasing and not every_event_sealed(
            await self._commands.stream_suites(connection, stream_id)
        ):
            raise PersonalDataNotEncrypted(stream_id)
        # A key created or destroyed goes in the transaction that writes the events, or not at
        # all (a receipt is in one already).
        keys_change = cipher is None or erasing
        in_one = keys_change and not connection.is_in_transaction()
        async with connection.transaction() if in_one else nullcontext():
            if cipher is None:  # a receipt, or a stream written before encryption
                cipher = await self._case_keys.new_cipher(connection, stream_id)
            if erasing:
                await self._case_keys.destroy(connection, stream_id)
                await erase_stored_responses(connection, [stream_id])
            written = await self._commands.write(
                connection,
                CaseWrite(
                    stream_id=stream_id,
                    events=new_events(events, metadata, cipher, head[0] + 1),
                    head=head,
                    case_view=case_view_values(new_state, self._index_key),
                    response=(
                        saved_values(
                            request.idempotency,
                            rendered.status_code,
                            rendered.body,
                            rendered.headers,
                        )
                        if request.idempotency is not None
                        else None
                    ),
                    releases_lock=current is not None,
                ),
            )
            if erasing:  # and from the table of a rebuild left part-way, if any
                await forget_rebuilding_rows(connection, [stream_id])
        if not connection.is_in_transaction():  # committed: the next command starts from here
            suite = cipher.suite.name if cipher is not None else None
            self._states.keep(stream_id, new_state.version, written.last_hash, new_state, suite)
        # where a read replica must have come to show this write (infra/read_replicas.py)
        rendered.headers[CONSISTENCY_POSITION] = str(max(written.positions))
        return rendered

    async def _authority(
        self,
        connection: asyncpg.Connection,
        actor: Actor,
        command: Any,
        respondent: Respondent,
        judging: tuple[ResolvedPolicy, date, int | None],
    ) -> dict[str, Any]:
        """`policies.decision_authority` for this caller and case: the limit under the policy
        of `policies.limit_lineage` on the command's business date (`judging`: the policy
        judging the command at the case, that date and the versions' stamp; the same policy
        unless the caller approves from above the case); an attribution reads the case's whole
        tree (one read more, for that command only)."""
        judged, business_date, policy_stamp = judging
        lineage = respondent.lineage
        tree: frozenset[str] = frozenset()
        if isinstance(command, Attribute) and lineage:
            tree = frozenset(await self._institutions.subtree(lineage[-1], connection=connection))
        limit_policy = judged
        own_lineage = limit_lineage(command, actor.institution, lineage)
        if own_lineage != lineage:
            limit_policy = await self._policies.in_force_along(
                own_lineage, business_date, policy_stamp, connection=connection
            )
        return decision_authority(limit_policy, actor.role, actor.institution, lineage, tree)

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

    async def _visible_current(
        self,
        connection: asyncpg.Connection,
        actor: Actor,
        case_id: str,
        locked: LockedCase,
        kept: "KeptState | None",
    ) -> tuple["_Current", tuple[str, ...]]:
        """The case as read under its lock, from the state `kept` of it when the stream still
        begins with it, and its respondent's lineage, when the caller may see the case."""
        if kept is not None and locked.after_head:
            version, hash_, state, suite = kept
            start: tuple[ComplaintState | None, str | None, tuple[int, str]] = (
                state,
                suite,
                (version, hash_),
            )
        else:
            start = INITIAL, None, (0, GENESIS_HASH)
        current = await self._folded(connection, case_id, *start, locked.events, locked.wrapped_key)
        if current is None:
            raise CaseNotFound(case_id)
        lineage = await self._visible_lineage(
            connection, actor, current.state, locked.respondent_lineage
        )
        return current, lineage

    async def _visible_lineage(
        self,
        connection: asyncpg.Connection,
        actor: Actor,
        state: ComplaintState,
        lineage_read: tuple[str, ...] = (),
    ) -> tuple[str, ...]:
        """The respondent's lineage (`lineage_read` already, when it is the respondent's), read
        once for visibility and the superior; `CaseNotFound` when the caller may not see it."""
        respondent = state.respondent_institution
        lineage = (
            lineage_read
            if lineage_read[:1] == (respondent,)
            else await self._institutions.lineage(respondent, connection=connection)
        )
        if not await may_see(actor, respondent, _KnownLineage(lineage)):
            raise CaseNotFound(state.id)
        return lineage

    async def _folded(
        self,
        connection: asyncpg.Connection,
        case_id: str,
        state: ComplaintState | None,
        suite: str | None,
        head: tuple[int, str],
        stored: Sequence[StoredEvent],
        wrapped_key: Any = UNREAD,
    ) -> "_Current | None":
        """`state` (at `head`) with the `stored` events after it folded in, kept for the next
        command; None for a case without events."""
        suite = stream_suite(stored) or suite
        cipher = None
        if suite and (
            records_erasure(stored) or (state is not None and state.personal_data_erased)
        ):
            # the key row read with the lock may predate the erasure: never unwrapped again
            cipher = self._case_keys.erased_cipher(case_id, suite)
        elif suite:
            cipher = await self._case_keys.cipher_for(connection, case_id, suite, wrapped_key)
            # read under the case's lock, which an erasure takes: no erasure comes between
            require_key_unless_erased(case_id, stored, cipher)
        require_versions_in_a_row(stored, after=head[0])
        for event in domain_events(stored, cipher):
            state = evolve(state, event)
        if stored:
            head = stored[-1].version, stored[-1].hash
        if state is None:
            return None
        self._states.keep(case_id, *head, state, suite)
        return _Current(state, cipher, head)

    async def _merge_target(
        self, connection: asyncpg.Connection, actor: Actor, case_id: str
    ) -> ComplaintState | None:
        """The state of the case a merge names, if the caller may see it, read under that case's
        lock too (`case_command_store.lock_merge_target`), held until the merge is written
        (`attempt` releases it)."""
        await self._commands.lock_merge_target(connection, case_id)
        stored = await self._store.read_stream(case_id, connection=connection)
        current = await self._folded(connection, case_id, INITIAL, None, (0, GENESIS_HASH), stored)
        if current is None:
            return None
        try:
            await self._visible_lineage(connection, actor, current.state)
        except CaseNotFound:
            return None
        return current.state

    async def _may_see(
        self, actor: Actor, institution: str, connection: asyncpg.Connection | None = None
    ) -> bool:
        return await may_see(actor, institution, self._institutions, connection=connection)


KeptState = tuple[int, str, ComplaintState, str | None]
"""(version, hash, state, the stream's suite): a case's state as kept, with its stream's head."""


@dataclass(frozen=True)
class _Current:
    """A case as read under its lock: its state, the cipher that opened its stream (None for a
    stream written before encryption) and the head (version, hash) the stream ends with."""

    state: ComplaintState
    cipher: StreamCipher | None
    head: tuple[int, str]


class KeptStates:
    """The last folded states of recently used cases, each with the version and hash of the event
    it was folded up to: a starting point the stream is checked against, never the truth.

    A state holds the case's personal data in plaintext, so it is kept no longer than the case's
    data key is (`crypto.key_cache.DataKeyCache`'s age): a case erased by another process (the
    sweep, another worker) leaves this one's memory within `max_age_seconds`, at its next use or
    the next keep. Entries are in the order they were kept (every command keeps its case again),
    so the oldest are first out, by age and beyond `capacity`."""

    def __init__(
        self,
        capacity: int,
        max_age_seconds: float = KEPT_STATE_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._states: AgedCache[str, KeptState] = AgedCache(capacity, max_age_seconds, clock)

    def __len__(self) -> int:
        return len(self._states)

    def get(self, case_id: str) -> KeptState | None:
        """(version, hash, state, the stream's suite) as kept, if it is and is not too old."""
        return self._states.get(case_id)

    def keep(
        self, case_id: str, version: int, hash_: str, state: ComplaintState, suite: str | None
    ) -> None:
        self._states.put(case_id, (version, hash_, state, suite))


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
    if isinstance(command, ApproveRedress) and not may_approve_redress(actor.role):
        raise NotPermitted("forbidden", "only a supervisor approves a redress")
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
