"""The retention sweep: erase the personal data of every case whose retention has ended
(DOMAIN.md "Personal data", Retention; `complaintcore personal-data sweep`).

Each case is erased exactly as `POST /v1/complaints/{id}/erase-personal-data` erases one: the
domain's `decide` judges `ErasePersonalData` under the policy in force (a case reopened since its
view row was written, or kept longer by its institution's policy, is refused and counted, never
erased), then the case's data key is destroyed and `PersonalDataErased` appended in one
transaction, with the case's view row. Only in batches, for speed (TARGETS.md: 1,000 cases a
second): a few hundred cases a transaction, each statement written for the whole batch.

**Never half-erased.** A batch is one transaction: the keys it destroys, the events it appends
and the view rows it marks erased commit together or not at all. A sweep killed anywhere (even
with SIGKILL) leaves whole batches erased and the rest held; running it again finds exactly the
cases still held, for it picks its cases from the view, not from a record of its own.

**Several hosts at once.** Candidates are read in the order of the index `case_view_erasable`
(closing day, case id) and their view rows locked `FOR UPDATE SKIP LOCKED`, so two sweepers
take disjoint cases and neither waits for the other. The view row rather than the `case_keys`
row is locked because every candidate has one, also a case stored before encryption, which has
no key and is counted as `not_encrypted`. Each picked case's command lock (the one every command
on a case queues on) is then tried without waiting: a case a command is working on is counted as
`busy` and left for the next run; one whose lock is taken cannot change until the batch commits.
A candidate whose view row another transaction holds (a command writing it, another sweep) is
passed over by SKIP LOCKED and counted `locked`, so the summary never says none is left held
while one is.
The append is still guarded by each stream's head (`PostgresEventStore.append_one_each`), as any
append is, against a writer that takes no lock.

**No key is read.** Deciding an erasure needs no personal field, so the streams are folded with
every personal field reading None (`projections.streams.fold_stream`), as a rebuild of the
statistics folds them; the erased state is then exactly what a rebuild of the view folds after the
erasure, and its view row the same. `PersonalDataErased` holds no personal field, so it is
appended with no cipher, its metadata recording the stream's suite (which also picks its chain
hash).

A dry run judges the same cases the same way and writes nothing (and locks nothing).
"""

import dataclasses
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import groupby

import asyncpg
from pydantic import ValidationError

from complaintcore.application.business_day import shanghai_today
from complaintcore.application.idempotency import erase_stored_responses
from complaintcore.application.policies import policy_in_force
from complaintcore.application.policy_store import all_policy_versions, read_policy_in_force
from complaintcore.application.requests.complaints import ErasePersonalDataBody
from complaintcore.domain.calendar import WorkingDayCalendar
from complaintcore.domain.commands import ErasePersonalData
from complaintcore.domain.decider import DecisionContext, check_erasure_ground, decide, evolve
from complaintcore.domain.events import PersonalDataErased
from complaintcore.domain.personal_data import personal_paths
from complaintcore.domain.policy import DEFAULT_POLICY, PolicyVersion, ResolvedPolicy
from complaintcore.domain.retention import retention_ended
from complaintcore.domain.roles import Role, is_code
from complaintcore.domain.rules import InvalidCommand, RuleViolation
from complaintcore.domain.state import ComplaintState
from complaintcore.events.case_keys import CaseKeys
from complaintcore.events.codec import (
    STREAM_DAMAGED,
    UNREADABLE_STREAM,
    every_event_sealed,
    new_events,
    versions_run_on,
)
from complaintcore.events.model import ConcurrencyError, EventMetadata, NewEvent, new_causation_id
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra import advisory_locks
from complaintcore.projections.case_view import COLUMNS as VIEW_COLUMNS
from complaintcore.projections.case_view import case_view_values, forget_rebuilding_rows
from complaintcore.projections.streams import decode_columns, fold_stream

__all__ = [
    "DEFAULT_ACTOR",
    "DEFAULT_BATCH_CASES",
    "DEFAULT_LEGAL_BASIS",
    "DEFAULT_REASON",
    "SWEEP_CLIENT",
    "BatchSwept",
    "RetentionSweep",
    "SweepOrder",
    "SweepReport",
    "last_closing_day_past_retention",
]

DEFAULT_REASON = "retention period ended"
DEFAULT_LEGAL_BASIS = "PIPL Art. 47; CBIRC Order 2020 No. 3 Art. 28"
DEFAULT_ACTOR = "retention-sweep"
SWEEP_CLIENT = "complaintcore personal-data sweep"
DEFAULT_BATCH_CASES = 300
MAX_BATCH_ATTEMPTS = 5

# Why a case past its closing day's retention is not erased (besides the domain's refusal codes,
# `retention_not_expired`, `case_open`, `personal_data_erased`, ...):
BUSY = "busy"  # a command (or another writer) was working on the case: left for the next run
# its view row was held when the batch took its rows (a command writing it, or another host's
# sweep): not judged by this run; the other sweep erases it, or the next run
LOCKED = "locked"
NOT_ENCRYPTED = "not_encrypted"  # events stored before encryption: destroying a key erases nothing
NO_EVENTS = "no_events"  # a view row without a stream (never written by this service)

# The erasure event is appended without a cipher (its case's key is being destroyed), so it must
# hold no personal field that would need sealing.
if personal_paths(PersonalDataErased.event_type) != ():
    raise RuntimeError("PersonalDataErased holds personal fields: the sweep cannot append it")

# Candidates after the cursor ($2, $3), in the order of `case_view_erasable`, whose closing day
# is at or before the cutoff ($1): their view rows locked, skipping rows another sweep or a
# command holds; then each case's command lock ($5) tried, never waited for.
_PICK = """
WITH picked AS MATERIALIZED (
    SELECT case_id, closed_on FROM case_view
    WHERE personal_data = 'held' AND closed_on IS NOT NULL AND closed_on <= $1
      AND (closed_on, case_id) > ($2, $3)
    ORDER BY closed_on, case_id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
)
SELECT case_id, closed_on, pg_try_advisory_xact_lock($5, hashtext(case_id)) AS free
FROM picked ORDER BY closed_on, case_id
"""

# How many candidates lie after the cursor ($2, $3), up to ($4, $5) or, with $4 NULL, to the
# end: read, not locked, so a row another transaction holds is counted too.
_CANDIDATES_UP_TO = """
SELECT count(*) FROM case_view
WHERE personal_data = 'held' AND closed_on IS NOT NULL AND closed_on <= $1
  AND (closed_on, case_id) > ($2, $3)
  AND ($4::date IS NULL OR (closed_on, case_id) <= ($4, $5))
"""

# The same candidates for a dry run: read, not locked.
_PEEK = """
SELECT case_id, closed_on, true AS free FROM case_view
WHERE personal_data = 'held' AND closed_on IS NOT NULL AND closed_on <= $1
  AND (closed_on, case_id) > ($2, $3)
ORDER BY closed_on, case_id
LIMIT $4
"""

_COUNT_DUE = """
SELECT count(*) FROM case_view
WHERE personal_data = 'held' AND closed_on IS NOT NULL AND closed_on <= $1
"""

# What a fold reads (no key), and each event's hash: the last one is the head the append chains to.
_STREAMS = f"""
SELECT {decode_columns(with_keys=False)}, hash FROM events
WHERE stream_id = ANY($1::text[])
ORDER BY stream_id, version
"""

# The erased case's view row, column for column as `case_view_values` makes it (its blind index
# None: DOMAIN.md, erased "everywhere ... the blind index").
_MARK_ERASED = (
    "UPDATE case_view SET "
    + ", ".join(f"{column} = ${number}" for number, column in enumerate(VIEW_COLUMNS[1:], 2))
    + " WHERE case_id = $1"
)

# A batch refused by another writer, or caught in a deadlock, is rolled back and run again.
_RETRIED = (ConcurrencyError, asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError)


@dataclass(frozen=True)
class SweepOrder:
    """What a run erases and records: as of business date `on` (never after today), with the
    stated ground, by `actor_id` (an admin), its events tied together by `correlation_id`."""

    on: date
    correlation_id: str
    reason: str = DEFAULT_REASON
    legal_basis: str = DEFAULT_LEGAL_BASIS
    actor_id: str = DEFAULT_ACTOR
    dry_run: bool = False
    batch_cases: int = DEFAULT_BATCH_CASES

    def __post_init__(self) -> None:
        if self.batch_cases < 1:
            raise ValueError("a batch holds at least one case")
        if not is_code(self.actor_id):
            raise ValueError(
                "an erasure records the admin who made it: --actor must be an id such as"
                " 'retention-sweep' (letters, digits, '_', '.', '-')"
            )
        try:  # the ground as the single-case erasure takes it (`erase-personal-data`'s body)
            ErasePersonalDataBody(reason=self.reason, legal_basis=self.legal_basis)
        except ValidationError as refused:
            problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in refused.errors())
            raise ValueError(f"the erasure's ground will not do: {problems}") from None
        try:
            check_erasure_ground(self.reason, self.legal_basis)
        except InvalidCommand as refused:
            problems = "; ".join(f"{error.field}: {error.message}" for error in refused.errors)
            raise ValueError(f"the erasure's ground will not do: {problems}") from None

    def metadata(self, suite: str) -> EventMetadata:
        """The metadata of a case's erasure event, on a stream sealed under `suite`."""
        return EventMetadata(
            actor_id=self.actor_id,
            actor_role=Role.ADMIN.value,
            correlation_id=self.correlation_id,
            causation_id=new_causation_id(),
            client=SWEEP_CLIENT,
            cipher_suite=suite,
        )


@dataclass(frozen=True)
class BatchSwept:
    """One batch: the cases it judged, those erased (or, in a dry run, that would be), and why
    the others were not."""

    judged: int
    erased: list[str]
    skipped: Counter[str]


@dataclass
class SweepReport:
    """A run: the cases erased (or, in a dry run, that would be), why the others were not, and
    how long it took."""

    erased: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Cases erased a second."""
        return self.erased / self.seconds if self.seconds > 0 else 0.0

    def add(self, batch: BatchSwept) -> None:
        self.erased += len(batch.erased)
        self.skipped.update(batch.skipped)


@dataclass(frozen=True)
class _Erasure:
    """A case's erasure, decided: the event to append after the stream's head, and the case's
    state after it (for its view row)."""

    case_id: str
    event: NewEvent
    head: tuple[int, str]
    erased: ComplaintState


BatchCallback = Callable[[BatchSwept], Awaitable[None] | None]


class RetentionSweep:
    """Erases, batch after batch on one connection, every case past its retention (see the
    module docstring)."""

    def __init__(
        self,
        connection: asyncpg.Connection,
        store: PostgresEventStore,
        case_keys: CaseKeys,
        order: SweepOrder,
        today: Callable[[], date] = shanghai_today,
    ) -> None:
        if order.on > today():
            raise ValueError(f"{order.on.isoformat()} is after today: erasure is never dated ahead")
        self._connection = connection
        self._store = store
        self._case_keys = case_keys
        self._order = order
        self._today = today
        self._cutoff_day: date | None = None

    async def _cutoff(self) -> date:
        """The last closing day a case may have to be past its retention: under the shortest
        retention any policy sets (no case closed after it can be past its own)."""
        if self._cutoff_day is None:
            versions = await all_policy_versions(self._connection)
            shortest = shortest_retention_years(versions, self._order.on)
            self._cutoff_day = last_closing_day_past_retention(self._order.on, shortest)
        return self._cutoff_day

    async def cases_due(self) -> int:
        """The held cases closed early enough to be past retention (an estimate of the work: the
        domain may still refuse some, and another sweeper may take some)."""
        return await self._connection.fetchval(_COUNT_DUE, await self._cutoff())

    async def run(self, on_batch: BatchCallback | None = None) -> SweepReport:
        """Sweep every candidate once; `on_batch` is told after each batch commits."""
        report = SweepReport()
        started = time.monotonic()
        after: tuple[date, str] = (date.min, "")
        while True:
            batch, last = await self._batch_with_retries(after)
            if last is None:
                report.add(batch)  # the candidates left locked, if any
                break
            after = last
            report.add(batch)
            if on_batch is not None:
                told = on_batch(batch)
                if told is not None:
                    await told
        report.seconds = time.monotonic() - started
        return report

    async def _batch_with_retries(
        self, after: tuple[date, str]
    ) -> tuple[BatchSwept, tuple[date, str] | None]:
        for attempt in range(MAX_BATCH_ATTEMPTS):
            try:
                return await self._batch(after)
            except _RETRIED:
                if attempt == MAX_BATCH_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def _batch(self, after: tuple[date, str]) -> tuple[BatchSwept, tuple[date, str] | None]:
        """One batch in one transaction: the batch and the cursor after it (None: no case left)."""
        async with self._connection.transaction():
            picked = await self._pick(after)
            cursor = (picked[-1]["closed_on"], picked[-1]["case_id"]) if picked else None
            locked = await self._passed_over(after, cursor, len(picked))
            if cursor is None:
                return BatchSwept(0, [], +Counter({LOCKED: locked})), None
            free = [row["case_id"] for row in picked if row["free"]]
            erasures, skipped = await self._judged(free)
            skipped[LOCKED] += locked
            skipped[BUSY] += len(picked) - len(free)
            erased = erasures if self._order.dry_run else await self._erase(erasures)
            skipped[BUSY] += len(erasures) - len(erased)
        batch = BatchSwept(len(picked), [e.case_id for e in erased], +skipped)
        return batch, cursor

    async def _passed_over(
        self, after: tuple[date, str], cursor: tuple[date, str] | None, picked: int
    ) -> int:
        """The candidates after `after`, up to `cursor` (None: to the end), that SKIP LOCKED
        passed over: counted, not left out of the summary unseen (a dry run locks nothing)."""
        if self._order.dry_run:
            return 0
        count = await self._connection.fetchval(
            _CANDIDATES_UP_TO, await self._cutoff(), *after, *(cursor or (None, None))
        )
        return int(count) - picked

    async def _pick(self, after: tuple[date, str]) -> list[asyncpg.Record]:
        if self._order.dry_run:
            return await self._connection.fetch(
                _PEEK, await self._cutoff(), *after, self._order.batch_cases
            )
        return await self._connection.fetch(
            _PICK,
            await self._cutoff(),
            *after,
            self._order.batch_cases,
            advisory_locks.CASE_COMMANDS,
        )

    async def _judged(self, case_ids: Sequence[str]) -> tuple[list[_Erasure], Counter[str]]:
        """The erasures of `case_ids`, and why the others are not erased, from their streams
        folded without keys."""
        if not case_ids:
            return [], Counter()
        rows = await self._connection.fetch(_STREAMS, list(case_ids))
        context = self._context()
        erasures: list[_Erasure] = []
        refusals: Counter[str] = Counter()
        policies: dict[str, ResolvedPolicy] = {}  # by respondent, read once a batch
        for _, case_rows in groupby(rows, key=lambda row: row["stream_id"]):
            verdict = await self._judge(list(case_rows), context, policies)
            if isinstance(verdict, _Erasure):
                erasures.append(verdict)
            else:
                refusals[verdict] += 1
        refusals[NO_EVENTS] = len(case_ids) - len(erasures) - refusals.total()
        return erasures, refusals

    def _context(self) -> DecisionContext:
        """What the erasure is decided against besides the case: the erasure needs no calendar,
        and has no review to route to a superior. Its policy is the case's (`_judge`)."""
        return DecisionContext(
            today=self._today(),
            calendar=WorkingDayCalendar(()),
            policy=policy_in_force(None, self._order.on),
            actor_id=self._order.actor_id,
            actor_role=Role.ADMIN,
            superior_of_respondent=None,
        )

    async def _judge(
        self,
        rows: list[asyncpg.Record],
        context: DecisionContext,
        policies: dict[str, ResolvedPolicy],
    ) -> "_Erasure | str":
        """The case's erasure, or the code of why it is not erased, under the policy in force
        at its respondent on the sweep's day (`policies`: those read in this batch)."""
        if not versions_run_on([row["version"] for row in rows]):
            return STREAM_DAMAGED  # no erasure appended after a gap, as a command would not
        if not every_event_sealed(row["cipher_suite"] for row in rows):
            return NOT_ENCRYPTED
        try:
            state = fold_stream(rows)
        except UNREADABLE_STREAM:
            # altered behind the store's back: left, as a command would refuse it, and the
            # others erased (found by a review pass: one such case stopped the whole sweep)
            return STREAM_DAMAGED
        assert state is not None, "a stream begins with its receipt"
        policy = await self._policy_of(state.respondent_institution, policies)
        command = ErasePersonalData(self._order.on, self._order.reason, self._order.legal_basis)
        try:
            events = decide(state, command, dataclasses.replace(context, policy=policy.policy))
        except RuleViolation as refused:
            return refused.code
        metadata = self._order.metadata(rows[-1]["cipher_suite"])
        judged = dataclasses.replace(metadata, policy_version=policy.version)
        (event,) = new_events(events, judged)
        head = (rows[-1]["version"], rows[-1]["hash"])
        erased = state
        for domain_event in events:
            erased = evolve(erased, domain_event)
        return _Erasure(state.id, event, head, erased)

    async def _policy_of(
        self, institution: str, policies: dict[str, ResolvedPolicy]
    ) -> ResolvedPolicy:
        if institution not in policies:
            policies[institution] = await read_policy_in_force(
                self._connection, institution, self._order.on
            )
        return policies[institution]

    async def _erase(self, erasures: Sequence[_Erasure]) -> list[_Erasure]:
        """Append each case's erasure, destroy its key, blank its stored responses, mark its view
        row erased: in the batch's transaction. The erasures written (a case whose head moved
        is left as it is)."""
        if not erasures:
            return []
        appended = await self._store.append_one_each(
            self._connection,
            {erasure.case_id: erasure.event for erasure in erasures},
            {erasure.case_id: erasure.head for erasure in erasures},
        )
        written = [erasure for erasure in erasures if erasure.case_id in appended]
        # in case id order, the order a key rotation locks rows in: the two never deadlock
        erased_ids = sorted(erasure.case_id for erasure in written)
        for case_id in erased_ids:
            await self._case_keys.destroy(self._connection, case_id)
        await erase_stored_responses(self._connection, erased_ids)
        await self._connection.executemany(
            _MARK_ERASED, [_view_values(erasure.erased) for erasure in written]
        )
        await forget_rebuilding_rows(self._connection, erased_ids)
        return written


def _view_values(state: ComplaintState) -> tuple:
    """The erased case's view row: no blind index, so no index key (`complainant_index`)."""
    return case_view_values(state, None)


def shortest_retention_years(versions: Iterable[PolicyVersion], on: date) -> int:
    """The retention the candidates are first filtered by: the shortest of the default's and of
    every stored version in effect by `on` (superseded or not: a bound, not a judgement). Each
    case is then judged under its own institution's policy in force (`_judge`)."""
    set_by_versions = (
        version.settings.retention_years
        for version in versions
        if version.effective_from <= on and version.settings.retention_years is not None
    )
    return min([DEFAULT_POLICY.retention_years, *set_by_versions])


def last_closing_day_past_retention(on: date, retention_years: int) -> date:
    """The latest closing day whose retention (`domain.retention.retention_ended`) is over on
    `on`: an index range for the candidates that agrees with the domain's calendar arithmetic,
    29 February included (a case closed on 2024-02-29 is kept through 2029-02-28 and past 5
    years on 2029-03-01)."""
    try:
        day = on.replace(year=on.year - retention_years)
    except ValueError:  # 29 February, in a year that has none
        day = on.replace(year=on.year - retention_years, day=28)
    while not retention_ended(day, retention_years, on):
        day -= timedelta(days=1)
    while retention_ended(day + timedelta(days=1), retention_years, on):
        day += timedelta(days=1)
    return day
