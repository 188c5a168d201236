"""Bulk import of historical cases (`complaintcore import FILE`), for institutions leaving an old
system.

The file is JSON Lines, one case a line: the fields of `POST /v1/complaints` (validated by the same
request models as the HTTP routes), an `external_id` (the case's id in the old system), and its
`actions` in order, each `{"command": "assign", "at": "2025-03-02", ...body}` with the body of
`POST /v1/complaints/{id}/{command}`. `at` is the day the action was entered: the command is decided
as if that day were today, and a body date left out defaults to it. An optional `actor`
(`{"id", "role", "institution"?}`) on the case or an action says who entered it.

Every command goes through the domain's `decide`, so every rule applies. A case with one refused
command is refused whole (reported with its line number and rule code) and the import goes on.

Writing is batched: many cases per transaction, the registration serials of a batch allocated
with one statement, the events written by the store's bulk path (one COPY:
`PostgresEventStore.append_streams`, the only writer of events besides `append`) and the case-view
rows with COPY. The store's guarantees hold: the events are hash-chained exactly as every append
chains them, versions start at 1 with no gaps, and the position floor is taken before any position
is drawn, so the global feed never skips an imported event.

Re-running the same file stores nothing new: a case's stream id is derived from its external id
(UUID v5), a case already stored is skipped when its receipt's respondent institution, received
date and channel are the line's (else the line is refused `external_id_reused`: another case
under the same number), and (stream, version) is unique in the database, so even two imports of
one file at once store each case once. A batch that meets another writer (an import storing the
same cases, a command on a merge target, a deadlock PostgreSQL broke on its side) is judged
again.

Choices where the spec is silent:

- A case is judged with a provisional registration number; accepted cases then get their real
  numbers (one serial range per institution and month, taken in the batch's transaction, so a
  refused case or a failed batch leaves no gap). The number is opaque to every rule (only its
  presence is checked), so the allocated number is what the stored receipt and case row carry.
- A merge names its target by `into` (a case id) or `into_external_id`. The target is checked as
  the HTTP command checks it, against the target's state as it stood on the merge's `at` day (its
  events up to that business date): the target must be stored, or earlier in the file, and still
  being handled that day, and a case of the duplicate's own head office's tree. A history where
  the target was decided after the duplicate was merged into it imports as it happened. A
  stored target is locked as a command locks it while the batch is written, and the batch is
  judged again if the target moved on since it was read.
- A review decision whose step names an actor with an institution is judged where that actor
  sits, as over HTTP (Art. 20); one with none (the operator's `--actor`) records what the
  superior decided.
- Entry dates (`at`) never go back within a line (`entry_dates_out_of_order`), and an external
  id that is an identity or mobile number is refused unnamed (`external_id_personal`): external
  ids are stored in clear for good.
- The stored metadata says who entered each action (`actor`, else the import's default actor),
  `client` is `complaintcore import`, `correlation_id` the import run, and the receipt's append
  carries the idempotency key `import:<external_id>`.

Why one file of about 800 lines: reading a line, judging it through the domain and writing a batch
are one pipeline whose guarantees (above) hold only together; each step is a small function.
"""

from __future__ import annotations

import asyncio
import codecs
import functools
import random
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from itertools import islice
from typing import Any, Literal

import asyncpg
import orjson
from pydantic import ValidationError

from complaintcore.application.case_command_store import lock_cases_until_commit
from complaintcore.application.policies import (
    command_business_date,
    decision_authority,
    limit_lineage,
    policy_in_force,
)
from complaintcore.application.policy_store import all_policy_versions
from complaintcore.application.requests import complaints as bodies
from complaintcore.application.requests.complaints import COMMAND_BODIES
from complaintcore.application.requests.fields import Body, Code, IsoDate
from complaintcore.application.requests.json_numbers import loads_exact
from complaintcore.crypto.blind_index import IndexKey
from complaintcore.domain.calendar import WorkingDayCalendar
from complaintcore.domain.commands import Attribute, DecideReview, MergeComplaint
from complaintcore.domain.decider import (
    DecisionContext,
    check_merge_target,
    check_review_decider,
    decide,
    evolve,
)
from complaintcore.domain.events import ComplaintReceived, Event
from complaintcore.domain.frozen import changed
from complaintcore.domain.identity import looks_like_a_personal_number, personal_numbers_redacted
from complaintcore.domain.policy import PolicyVersion, ResolvedPolicy, resolve_policy
from complaintcore.domain.roles import Role, is_code
from complaintcore.domain.rules import BUSINESS_DATE_IN_FUTURE, InvalidCommand, RuleViolation
from complaintcore.domain.state import ComplaintState
from complaintcore.events.bulk import NewStream
from complaintcore.events.case_keys import CaseKeyExists, CaseKeys
from complaintcore.events.codec import (
    STREAM_DAMAGED,
    UNREADABLE_STREAM,
    domain_events,
    new_events,
    require_versions_in_a_row,
    stream_suite,
)
from complaintcore.events.model import (
    ConcurrencyError,
    EventMetadata,
    InvalidEventData,
    NewEvent,
    new_causation_id,
)
from complaintcore.events.store import PostgresEventStore
from complaintcore.events.stream_cipher import StreamCipher
from complaintcore.infra.database import use_binary_json
from complaintcore.infra.garbage_collection import collections_by_batch
from complaintcore.projections.case_view import COLUMNS as CASE_VIEW_COLUMNS
from complaintcore.projections.case_view import case_view_values, load_index_key
from complaintcore.reference.calendars import CalendarRepository

IMPORT_NAMESPACE = uuid.UUID("6f1c9e4a-2b7d-5c3e-9a8f-1d2e3f4a5b6c")
CLIENT = "complaintcore import"
DEFAULT_BATCH_CASES = 1000
# the cyclic collector off while importing, a full collection every 100 batches instead
# (infra.garbage_collection: 17 % of an import's time went to collections that found nothing)
COLLECT_EVERY_BATCHES = 100
PROVISIONAL_SERIAL = 1  # judged with this serial; the real one is allocated when the case is stored
MAX_BATCH_ATTEMPTS = 5

_HEADER_FIELDS = frozenset({"external_id", "actor", "at"})
_CASE_FIELDS = _HEADER_FIELDS | {"actions"}
_ACTION_FIELDS = frozenset({"command", "at", "actor", "into_external_id"})


_MET_ANOTHER_WRITER = (
    ConcurrencyError,
    CaseKeyExists,
    asyncpg.UniqueViolationError,
    asyncpg.DeadlockDetectedError,
)


class BatchKeptMeetingWriters(Exception):
    """A batch met other writers (imports, commands on its merge targets) at every attempt; the
    batches before it are stored, and the same import again goes on from it."""

    def __init__(self, first_line: int, attempts: int) -> None:
        super().__init__(
            f"the batch from line {first_line} met other writers {attempts} times in a row"
        )


def case_id_for(external_id: str) -> str:
    """The stream id of an imported case: the same external id always gives the same case."""
    return str(uuid.uuid5(IMPORT_NAMESPACE, external_id))


class ActorBody(Body):
    id: Code
    role: Role
    institution: Code | None = None


class CaseHeader(Body):
    """What a line carries besides the receipt's fields and its actions."""

    external_id: Code
    at: IsoDate | None = None
    actor: ActorBody | None = None


class ActionHeader(Body):
    command: Literal[tuple(COMMAND_BODIES)]  # type: ignore[valid-type]
    at: IsoDate
    actor: ActorBody | None = None
    into_external_id: Code | None = None


@dataclass(frozen=True)
class ReferenceData:
    """What the rules need besides the case, loaded once per import."""

    today: date
    calendar: WorkingDayCalendar
    superiors: Mapping[str, str | None]  # every institution code -> its parent's code
    default_actor: ActorBody
    correlation_id: str
    policy_versions: tuple[PolicyVersion, ...] = ()  # every node's, read once for the import
    _resolved: dict[tuple[str, date], ResolvedPolicy] = field(
        default_factory=dict, compare=False, repr=False
    )

    def policy_on(self, institution: str, on: date) -> ResolvedPolicy:
        """The policy in force at `institution` on `on`, as the service would judge under it."""
        key = (institution, on)
        if key not in self._resolved:
            lineage = tuple(reversed(self.lineage(institution)))  # head office first
            self._resolved[key] = resolve_policy(lineage, self.policy_versions, on)
        return self._resolved[key]

    def lineage(self, institution: str) -> tuple[str, ...]:
        """`institution`, its parent, … up to its head office (as the directory's `lineage`)."""
        lineage = [institution]
        while (parent := self.superiors.get(lineage[-1])) is not None and len(lineage) < 64:
            lineage.append(parent)
        return tuple(lineage)

    def tree_of(self, head_office: str) -> frozenset[str]:
        """Every institution whose head office is `head_office`."""
        return frozenset(code for code in self.superiors if self.lineage(code)[-1] == head_office)


@dataclass(frozen=True)
class Refusal:
    line_number: int
    external_id: str | None
    code: str
    detail: str

    def describe(self) -> str:
        case = f" ({self.external_id})" if self.external_id else ""
        return f"line {self.line_number}{case}: {self.code}: {self.detail}"


@dataclass(frozen=True)
class Step:
    """The events of one command, with who entered it."""

    events: list[Event]
    metadata: EventMetadata


@dataclass(frozen=True)
class AcceptedCase:
    line_number: int
    external_id: str
    case_id: str
    institution: str
    received_on: date
    steps: list[Step]
    state: ComplaintState

    @property
    def event_count(self) -> int:
        return self.state.version

    @property
    def events(self) -> list[Event]:
        return [event for step in self.steps for event in step.events]


@dataclass
class ImportReport:
    cases_imported: int = 0
    events_imported: int = 0
    cases_skipped: int = 0  # already stored: a re-run of the same file
    refusals: list[Refusal] = field(default_factory=list)


# A stored merge target whose events cannot be read as written: a line merging into it is
# refused STREAM_DAMAGED, as a command on it is
DAMAGED_TARGET: tuple[Event, ...] = ()


class _Refused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


# --- judging one line (pure) -----------------------------------------------------------------


def parse_line(text: bytes | str) -> dict[str, Any]:
    try:
        document = loads_exact(text)
    except orjson.JSONDecodeError:
        raise _Refused("invalid_json", _why_not_json(text)) from None
    if not isinstance(document, dict):
        raise _Refused("invalid_json", "the line is not one JSON object")
    return document


def _why_not_json(text: bytes | str) -> str:
    if isinstance(text, bytes):
        try:
            text.decode()
        except UnicodeDecodeError:
            return (
                "the line is not UTF-8 text (save the file as UTF-8: GBK and UTF-16 are not read)"
            )
    return "the line is not one JSON object"


def judge_case(
    line_number: int,
    document: dict[str, Any],
    reference: ReferenceData,
    merge_targets: Mapping[str, Sequence[Event]],
) -> AcceptedCase | Refusal:
    """Decide every command of one case; the accepted case, or why it was refused."""
    external_id = document.get("external_id") if isinstance(document, dict) else None
    try:
        return _judge(line_number, document, reference, merge_targets)
    except _Refused as refused:
        return Refusal(line_number, _label(external_id), refused.code, refused.detail)


def _label(external_id: object) -> str | None:
    """The line's external id to name its refusal by, if it is one (a code): a text that is
    not may be anything, a name or an identity number typed in the wrong column."""
    if not isinstance(external_id, str) or not is_code(external_id):
        return None
    return None if looks_like_a_personal_number(external_id) else external_id


def _not_personal(external_id: str, field: str) -> str:
    """An external id is stored in clear for good (each event's idempotency key, the case id
    derived from it): an identity or mobile number there would outlive any erasure (found by a
    review pass)."""
    if looks_like_a_personal_number(external_id):
        raise _Refused(
            "external_id_personal",
            f"{field}: an identity or mobile number is personal data, kept only sealed; give "
            "the source system's case number",
        )
    return external_id


def _judge(
    line_number: int,
    document: dict[str, Any],
    reference: ReferenceData,
    merge_targets: Mapping[str, Sequence[Event]],
) -> AcceptedCase:
    header = _validated(CaseHeader, {k: v for k, v in document.items() if k in _HEADER_FIELDS}, "")
    receipt_fields = {k: v for k, v in document.items() if k not in _CASE_FIELDS}
    receipt = _validated(bodies.ReceiveBody, receipt_fields, "")
    if receipt.received_on is None:
        raise _Refused("validation_failed", "received_on: required for a historical case")
    institution = receipt.respondent_institution
    if institution not in reference.superiors:
        raise _Refused("unknown_institution", f"respondent_institution {institution} is unknown")
    case_id = case_id_for(_not_personal(header.external_id, "external_id"))
    provisional = reference.policy_on(institution, receipt.received_on).policy.registration_number(
        institution, receipt.received_on, PROVISIONAL_SERIAL
    )
    at = header.at or receipt.received_on
    actor = header.actor or reference.default_actor
    command = receipt.to_command(case_id, provisional, at)
    state, step = _apply(None, command, at, actor, institution, reference, "receipt")
    steps = [step]
    actions = document.get("actions", [])
    if not isinstance(actions, list):
        raise _Refused("validation_failed", "actions: expected a list")
    entered = at
    for index, action in enumerate(actions, start=1):
        where = f"actions[{index}]"
        action_header, command = _action_command(action, where)
        if action_header.at < entered:
            # the API enters each command as of its day, in order; a command without a date of
            # its own (assign, merge) would otherwise be recorded after a later one
            raise _Refused(
                "entry_dates_out_of_order",
                f"{where}: at {action_header.at} is before the entry before it ({entered})",
            )
        entered = action_header.at
        judge_target = None
        if isinstance(command, MergeComplaint) and command.into != case_id:
            target = merge_targets.get(command.into)
            if target is DAMAGED_TARGET:
                raise _Refused(STREAM_DAMAGED, f"{where}: the case merged into is not whole")
            try:
                at_the_time = state_as_of(target, action_header.at) if target else None
            except UNREADABLE_STREAM:
                # a stored target altered behind the store's back: this line refused, the run
                # goes on (found by a review pass: the whole import stopped)
                raise _Refused(
                    STREAM_DAMAGED, f"{where}: the case merged into is not whole"
                ) from None
            if at_the_time is not None and not _same_tree(at_the_time, institution, reference):
                at_the_time = None  # another bank's case: unknown, as the API answers it
            judge_target = functools.partial(check_merge_target, at_the_time)
        decider = action_header.actor or actor
        if isinstance(command, DecideReview) and decider.institution is not None:
            # where the step's actor sits, as over HTTP; one with no institution is the
            # operator's (`--actor`), who records what the superior decided
            judge_target = functools.partial(
                check_review_decider, state, decider.institution, reference.lineage(institution)
            )
        state, step = _apply(
            state,
            command,
            action_header.at,
            decider,
            institution,
            reference,
            f"{where} ({action_header.command})",
            judge_target,
        )
        steps.append(step)
    return AcceptedCase(
        line_number, header.external_id, case_id, institution, receipt.received_on, steps, state
    )


def _same_tree(target: ComplaintState, institution: str, reference: ReferenceData) -> bool:
    """Whether a merge target is a case of the duplicate's own head office's tree: a line may
    name its actors, but no principal anywhere sees two banks' cases (found by a review pass:
    an import merged a case into another bank's, which counted it there)."""
    head_office = reference.lineage(institution)[-1]
    return reference.lineage(target.respondent_institution)[-1] == head_office


def state_as_of(events: Sequence[Event], day: date) -> ComplaintState | None:
    """The case as it stood at the end of `day`: its events up to the first one dated after it
    (a case's business dates never go back), or None when it was received later."""
    state = None
    for event in events:
        following = evolve(state, event)
        if following.last_business_date > day:
            break
        state = following
    return state


def _action_command(action: Any, where: str) -> tuple[ActionHeader, Any]:
    if not isinstance(action, dict):
        raise _Refused("validation_failed", f"{where}: expected an object")
    header = _validated(
        ActionHeader, {k: v for k, v in action.items() if k in _ACTION_FIELDS}, f"{where}."
    )
    body_fields = {k: v for k, v in action.items() if k not in _ACTION_FIELDS}
    if header.into_external_id is not None:
        into = _not_personal(header.into_external_id, f"{where}.into_external_id")
        body_fields["into"] = case_id_for(into)
    body = _validated(COMMAND_BODIES[header.command], body_fields, f"{where}.")
    return header, body.to_command(header.at)  # type: ignore[attr-defined]


def _apply(
    state: ComplaintState | None,
    command: Any,
    at: date,
    actor: ActorBody,
    institution: str,
    reference: ReferenceData,
    where: str,
    judge_target: Callable[[], None] | None = None,
) -> tuple[ComplaintState, Step]:
    """`judge_target`: a merge's check of its target, once the case's own rules pass."""
    if at > reference.today:
        raise _Refused(BUSINESS_DATE_IN_FUTURE.code, f"{where}: at {at} is after today")
    on = command_business_date(command, at)
    judged = reference.policy_on(institution, on)
    lineage = reference.lineage(institution)
    limit_policy = reference.policy_on(limit_lineage(command, actor.institution, lineage)[0], on)
    case_tree = reference.tree_of(lineage[-1]) if isinstance(command, Attribute) else frozenset()
    context = DecisionContext(
        today=at,
        calendar=reference.calendar,
        policy=judged.policy,
        actor_id=actor.id,
        actor_role=actor.role,
        superior_of_respondent=reference.superiors.get(institution),
        **decision_authority(limit_policy, actor.role, actor.institution, lineage, case_tree),
    )
    try:
        events = decide(state, command, context)
        if judge_target is not None:
            judge_target()
    except (RuleViolation, InvalidCommand) as refusal:
        raise _refusal(refusal, where) from None
    for event in events:
        state = evolve(state, event)
    assert state is not None
    metadata = EventMetadata(
        actor_id=actor.id,
        actor_role=actor.role.value,
        institution=actor.institution,
        correlation_id=reference.correlation_id,
        causation_id=new_causation_id(),
        client=CLIENT,
        policy_version=judged.version,
    )
    return state, Step(events, metadata)


def _validated(model: type[Body], data: dict[str, Any], prefix: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        # Field paths and error types only: the input values may be personal data.
        # (a key is input too: a personal number sent as one is not repeated)
        problems = "; ".join(
            f"{prefix}{'.'.join(str(part) for part in e['loc']) or '(line)'}: {e['type']}"
            for e in error.errors()
        )
        problems = personal_numbers_redacted(problems)
        raise _Refused("validation_failed", problems) from None


def _refusal(refusal: RuleViolation | InvalidCommand, where: str) -> _Refused:
    if isinstance(refusal, RuleViolation):
        return _Refused(refusal.code, f"{where}: {refusal.message} [{refusal.article}]")
    fields = "; ".join(f"{error.field}: {error.code}" for error in refusal.errors)
    return _Refused("validation_failed", f"{where}: {fields}")


# A re-run finds a line's case stored: the same case when its receipt's facts that are not
# personal (so readable without its key) are the line's. The external id alone said so, and a
# second source system's case under the same number was passed over as stored (found by a
# review pass).
_STORED_RECEIPTS = """
SELECT stream_id, data->>'respondent_institution' AS institution,
       data->>'received_on' AS received_on, data->>'channel' AS channel
FROM events WHERE version = 1 AND stream_id = ANY($1::text[])
"""

ReceiptFacts = tuple[object, object, object]

_TARGET_VERSIONS = """
SELECT stream_id, max(version) AS version FROM events
WHERE stream_id = ANY($1::text[]) GROUP BY stream_id
"""


async def _stored_receipts(
    connection: asyncpg.Connection, case_ids: list[str]
) -> dict[str, ReceiptFacts]:
    """The receipts' facts (`_receipt_facts`) of stored cases, by case id."""
    rows = await connection.fetch(_STORED_RECEIPTS, case_ids)
    return {
        row["stream_id"]: (row["institution"], row["received_on"], row["channel"]) for row in rows
    }


def _receipt_facts(document: dict[str, Any]) -> ReceiptFacts:
    return (
        document.get("respondent_institution"),
        document.get("received_on"),
        document.get("channel"),
    )


def _reused(line_number: int, external_id: str) -> Refusal:
    return Refusal(
        line_number,
        _label(external_id),
        "external_id_reused",
        "a case with this external id is stored already, with another respondent institution, "
        "received date or channel: give each source system's cases their own ids",
    )


# --- writing batches -------------------------------------------------------------------------

# One range of serials per institution and month; sorted so that concurrent imports lock the
# counter rows in the same order.
_ALLOCATE_SERIALS = """
INSERT INTO registration_serials AS s (institution, month, last_serial)
SELECT u.institution, u.month, u.taken
FROM unnest($1::text[], $2::text[], $3::int[]) AS u(institution, month, taken)
ORDER BY u.institution, u.month
ON CONFLICT (institution, month) DO UPDATE SET last_serial = s.last_serial + EXCLUDED.last_serial
RETURNING institution, month, last_serial
"""


class BulkImporter:
    """Imports parsed lines batch by batch over one connection (see the module docstring)."""

    def __init__(
        self,
        connection: asyncpg.Connection,
        store: PostgresEventStore,
        reference: ReferenceData,
        case_keys: CaseKeys,
        batch_cases: int = DEFAULT_BATCH_CASES,
    ) -> None:
        self._connection = connection
        self._store = store
        self._case_keys = case_keys
        self._reference = reference
        self._batch_cases = batch_cases
        self._index_key: IndexKey | None = None  # the blind index's, loaded as `run` starts
        # the cases of this run's lines so far, stored by it or before it: a later line naming
        # one again gives it twice (refused), whichever batch either line is in
        self._ids_taken: set[str] = set()
        # the stored merge targets the batch in hand was judged against, by the version read
        self._targets_read: dict[str, int] = {}

    async def run(
        self,
        lines: Iterable[tuple[int, bytes]],
        on_batch: Callable[[ImportReport], Awaitable[None] | None] | None = None,
    ) -> ImportReport:
        """Import every (line number, text) pair; `on_batch` is told after each batch."""
        await use_binary_json(self._connection)
        self._index_key = await load_index_key(
            self._connection, self._case_keys.provider, self._case_keys.suite.name
        )
        report = ImportReport()
        with collections_by_batch(COLLECT_EVERY_BATCHES) as batch_done:
            for batch in _batches(lines, self._batch_cases):
                await self._import_batch(batch, report)
                batch_done()
                if on_batch is not None:
                    outcome = on_batch(report)
                    if outcome is not None:
                        await outcome
        return report

    async def _import_batch(self, batch: list[tuple[int, bytes]], report: ImportReport) -> None:
        documents, refusals = _parsed(batch)
        for attempt in range(MAX_BATCH_ATTEMPTS):
            try:
                accepted, skipped, judged_refusals, taken = await self._judged(documents)
                await self._write(accepted)
                self._ids_taken = taken
            except _MET_ANOTHER_WRITER as met:
                # Another import stored some of these cases meanwhile, a merge target moved on,
                # or a command merging one target into another waited for this batch's locks
                # (PostgreSQL broke the deadlock here): judge again, skip what is stored.
                if attempt == MAX_BATCH_ATTEMPTS - 1:
                    raise BatchKeptMeetingWriters(batch[0][0], MAX_BATCH_ATTEMPTS) from met
                await asyncio.sleep(random.uniform(0, 0.05 * 2**attempt))
                continue
            break
        report.cases_imported += len(accepted)
        report.events_imported += sum(case.event_count for case in accepted)
        report.cases_skipped += skipped
        report.refusals.extend(sorted([*refusals, *judged_refusals], key=_by_line))

    async def _judged(
        self, documents: list[tuple[int, dict[str, Any]]]
    ) -> tuple[list[AcceptedCase], int, list[Refusal], set[str]]:
        """The batch's cases to store, how many it holds stored already (a re-run), its
        refusals, and the ids taken once it is stored."""
        ids = {
            number: case_id_for(doc["external_id"])
            for number, doc in documents
            if isinstance(doc.get("external_id"), str)
        }
        existing = await self._store.existing_streams(
            list(ids.values()), connection=self._connection
        )
        stored = await _stored_receipts(self._connection, sorted(existing)) if existing else {}
        damaged = await self._store.streams_without_a_first_event(
            list(ids.values()), connection=self._connection
        )
        # the batch's own cases are judged here, unless stored already (by a run before: a
        # merge into one of those reads it from the store)
        targets = await self._stored_merge_targets(documents, set(ids.values()) - set(stored))
        accepted: list[AcceptedCase] = []
        refusals: list[Refusal] = []
        skipped, taken = 0, set(self._ids_taken)
        for number, document in documents:
            case_id = ids.get(number)
            if case_id in taken:
                label = _label(document["external_id"])
                refusals.append(Refusal(number, label, "duplicate_external_id", "given twice"))
                continue
            if case_id in damaged:  # a stream with a version missing, as a command refuses it
                taken.add(case_id)
                label = _label(document["external_id"])
                refusals.append(
                    Refusal(number, label, STREAM_DAMAGED, "its stored events are not whole")
                )
                continue
            if case_id in stored:
                taken.add(case_id)
                if stored[case_id] != _receipt_facts(document):
                    refusals.append(_reused(number, document["external_id"]))
                else:
                    skipped += 1
                continue
            verdict = judge_case(number, document, self._reference, targets)
            if isinstance(verdict, Refusal):
                refusals.append(verdict)
                if case_id is not None:  # refused, its id still given: a later line's is twice
                    taken.add(case_id)
            else:
                accepted.append(verdict)
                targets[verdict.case_id] = verdict.events
                taken.add(verdict.case_id)
        return accepted, skipped, refusals, taken

    async def _stored_merge_targets(
        self, documents: list[tuple[int, dict[str, Any]]], judged_here: set[str]
    ) -> dict[str, list[Event]]:
        wanted = {target for _, doc in documents for target in _merge_targets(doc)} - judged_here
        targets: dict[str, list[Event]] = {}
        self._targets_read = {}
        for case_id in sorted(wanted):
            stored = await self._store.read_stream(case_id, connection=self._connection)
            if stored:
                try:
                    require_versions_in_a_row(stored)
                    suite = stream_suite(stored)
                    cipher = (
                        await self._case_keys.cipher_for(self._connection, case_id, suite)
                        if suite is not None
                        else None
                    )
                    targets[case_id] = domain_events(stored, cipher)
                except UNREADABLE_STREAM:
                    targets[case_id] = DAMAGED_TARGET  # a merge into it is refused, as over HTTP
                self._targets_read[case_id] = stored[-1].version
        return targets

    async def _write(self, accepted: list[AcceptedCase]) -> None:
        if not accepted:
            return
        async with self._connection.transaction():
            await self._hold_merge_targets()
            data_keys = self._case_keys.new_data_keys([case.case_id for case in accepted])
            numbers = await allocate_registration_numbers(self._connection, accepted)
            view_records: list[tuple[Any, ...]] = []
            for case, number in zip(accepted, numbers, strict=True):
                numbered = changed(case.state, registration_no=number)
                view_records.append(case_view_values(numbered, self._index_key))
            # a generator: the store hashes each case's events as soon as they are made
            streams = (
                new_stream_of(case, number, self._cipher(case.case_id, data_keys[case.case_id]))
                for case, number in zip(accepted, numbers, strict=True)
            )
            try:
                await self._store.append_streams(self._connection, streams)
            except InvalidEventData as error:  # the request models let nothing unstorable through
                lines = [str(c.line_number) for c in accepted if repr(c.case_id) in str(error)]
                raise AssertionError(f"line {', '.join(lines) or '?'}: {error}") from error
            await self._case_keys.store_new(self._connection, data_keys)
            await self._connection.copy_records_to_table(
                "case_view", records=view_records, columns=CASE_VIEW_COLUMNS
            )

    async def _hold_merge_targets(self) -> None:
        """Lock the stored merge targets as a command locks a case (until this batch commits),
        once their writers have committed, and `ConcurrencyError` (judge the batch again) if
        any moved on since it was judged. Found by a review pass: a merge was stored into a
        target the API decided between the import's read of it and its write."""
        targets = list(self._targets_read)
        if not targets:
            return
        await lock_cases_until_commit(self._connection, targets)
        rows = await self._connection.fetch(_TARGET_VERSIONS, targets)
        for row in rows:
            if row["version"] != self._targets_read[row["stream_id"]]:
                read = self._targets_read[row["stream_id"]]
                raise ConcurrencyError(row["stream_id"], read, row["version"])

    def _cipher(self, case_id: str, data_key: bytes) -> StreamCipher:
        return StreamCipher(case_id, self._case_keys.suite, data_key)


async def allocate_registration_numbers(
    connection: asyncpg.Connection, cases: Sequence[AcceptedCase]
) -> list[str]:
    """Registration numbers for `cases`, in order, gapless per institution and month, each as
    the policy in force at its receipt numbers it."""
    counts: dict[tuple[str, str], int] = {}
    for case in cases:
        key = (case.institution, case.received_on.strftime("%Y%m"))
        counts[key] = counts.get(key, 0) + 1
    keys = sorted(counts)
    rows = await connection.fetch(
        _ALLOCATE_SERIALS,
        [institution for institution, _ in keys],
        [month for _, month in keys],
        [counts[key] for key in keys],
    )
    next_serial = {
        (row["institution"], row["month"]): row["last_serial"]
        - counts[(row["institution"], row["month"])]
        + 1
        for row in rows
    }
    numbers = []
    for case in cases:
        key = (case.institution, case.received_on.strftime("%Y%m"))
        policy = policy_in_force(case.institution, case.received_on)
        numbers.append(
            policy.registration_number(case.institution, case.received_on, next_serial[key])
        )
        next_serial[key] += 1
    return numbers


def new_stream_of(case: AcceptedCase, registration_no: str, cipher: StreamCipher) -> NewStream:
    """The case's events as a new stream for the store, their personal fields sealed by the
    case's `cipher`, the receipt carrying its real number."""
    stored: list[NewEvent] = []
    for step in case.steps:
        stored.extend(new_events(step.events, step.metadata, cipher, len(stored) + 1))
    receipt = stored[0]
    assert receipt.event_type == ComplaintReceived.event_type
    stored[0] = replace(receipt, data=receipt.data | {"registration_no": registration_no})
    return NewStream(case.case_id, stored, idempotency_key=f"import:{case.external_id}")


def _merge_targets(document: dict[str, Any]) -> Iterator[str]:
    actions = document.get("actions")
    if not isinstance(actions, list):
        return
    for action in actions:
        if not isinstance(action, dict) or action.get("command") != "merge":
            continue
        if isinstance(action.get("into_external_id"), str):
            yield case_id_for(action["into_external_id"])
        elif isinstance(action.get("into"), str):
            yield action["into"].lower()


def _parsed(
    batch: list[tuple[int, bytes]],
) -> tuple[list[tuple[int, dict[str, Any]]], list[Refusal]]:
    documents: list[tuple[int, dict[str, Any]]] = []
    refusals: list[Refusal] = []
    for number, text in batch:
        try:
            documents.append((number, parse_line(text)))
        except _Refused as refused:
            refusals.append(Refusal(number, None, refused.code, refused.detail))
    return documents, refusals


def _batches(lines: Iterable[tuple[int, bytes]], size: int) -> Iterator[list[tuple[int, bytes]]]:
    iterator = iter(lines)
    while batch := list(islice(iterator, size)):
        yield batch


def _by_line(refusal: Refusal) -> int:
    return refusal.line_number


_BYTE_ORDER_MARK = codecs.BOM_UTF8


def numbered_lines(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their 1-based line numbers; the first without the byte order mark
    an editor may put before UTF-8 (Notepad, Excel: its first case was refused as no JSON,
    found by a review pass)."""
    for number, line in enumerate(lines, start=1):
        if number == 1:
            line = line.removeprefix(_BYTE_ORDER_MARK)
        if line.strip():
            yield number, line


async def load_reference_data(
    connection: asyncpg.Connection,
    today: date,
    default_actor: ActorBody,
    correlation_id: str | None = None,
) -> ReferenceData:
    """The institution tree and the working-day calendar, read once for the whole import."""
    rows = await connection.fetch("SELECT code, parent FROM institutions")
    calendar = await CalendarRepository(connection).working_day_calendar()  # type: ignore[arg-type]
    return ReferenceData(
        today=today,
        calendar=calendar,
        superiors={row["code"]: row["parent"] for row in rows},
        default_actor=default_actor,
        correlation_id=correlation_id or f"import-{uuid.uuid4()}",
        policy_versions=await all_policy_versions(connection),
    )
