"""`ComplaintService` over an in-memory `CaseCommandStore` (tests/case_command_fakes.py, held to
the PostgreSQL store's contract by tests/integration/test_case_command_store_contract.py): how a
command uses its two round trips, whatever the database."""

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from case_command_fakes import FakePool, InMemoryCaseCommands, InMemoryEventReads
from complaintcore.application.case_command_store import CaseWrite
from complaintcore.application.complaint_service import (
    ActorNotConfirmed,
    ComplaintService,
    IdempotencyKeyReused,
    PreconditionFailed,
    Rendered,
    RequestInfo,
)
from complaintcore.application.idempotency import IdempotentRequest, StoredResponse
from complaintcore.auth.principals import Principal
from complaintcore.crypto.blind_index import IndexKey
from complaintcore.domain.calendar import WorkingDayCalendar, seeded_calendar
from complaintcore.domain.commands import AssignHandler, ResumeClock
from complaintcore.domain.policy import (
    InstitutionPolicy,
    ResolvedPolicy,
    resolve_policy,
)
from complaintcore.domain.rules import RuleViolation
from complaintcore.domain.state import ComplaintState, fold
from complaintcore.events.codec import new_events
from complaintcore.events.model import GENESIS_HASH, EventMetadata
from complaintcore.events.stream_cipher import StreamCipher
from complaintcore.projections.case_view import case_view_values
from projection_support import received
from testsupport import session_case_keys

DAY = date(2026, 3, 2)
CASE = "case-1"
LINEAGE = ("BR-A", "HO")
STAFF = Principal("staff-a1", "staff", "BR-A")


class Institutions:
    async def lineage(self, code: str, **_: Any) -> tuple[str, ...]:
        return LINEAGE if code == "BR-A" else ()

    async def subtree(self, code: str, **_: Any) -> list[str]:
        return list(LINEAGE)

    async def is_within(self, ancestor: str, code: str, **_: Any) -> bool:
        return ancestor in await self.lineage(code)


class Calendars:
    async def working_day_calendar(self) -> WorkingDayCalendar:
        return seeded_calendar()


class Policies:
    """No institution sets a policy: the defaults everywhere."""

    async def in_force_along(self, lineage: Any, on: date, stamp: Any, **_: Any) -> ResolvedPolicy:
        return resolve_policy(lineage, [], on)

    async def in_force(self, institution: str, on: date) -> ResolvedPolicy:
        return resolve_policy(LINEAGE[::-1], [], on)


@dataclass(frozen=True)
class Token:
    """A credential seen before: confirmed when the fake's `principals` maps it to `principal`."""

    argument: str
    principal: str

    def sql(self, parameter: str) -> str:
        raise AssertionError("the fake reads no SQL")

    def confirms(self, current: Any) -> bool:
        return current == self.principal


def rendered(state: ComplaintState, today: date, policy: InstitutionPolicy) -> Rendered:
    return Rendered(
        200,
        {"id": state.id, "version": state.version, "respondent_institution": "BR-A"},
        {},
    )


@pytest.fixture
async def commands() -> InMemoryCaseCommands:
    """The fake, holding one received case whose personal fields are sealed under its key."""
    fake = InMemoryCaseCommands()
    keys = session_case_keys()
    data_key = keys.suite.new_data_key()
    fake.wrapped_keys[CASE] = keys.provider.wrap(data_key)
    fake.lineages[CASE] = LINEAGE
    events = received(CASE, "BR-A", "HO", DAY)
    cipher = StreamCipher(CASE, keys.suite, data_key)
    state = fold(events)
    assert state is not None
    row = case_view_values(state, index_key())
    stored = new_events(events, EventMetadata(actor_id="staff-a1"), cipher)
    await fake.write(None, CaseWrite(CASE, stored, (0, GENESIS_HASH), row, None, False))
    return fake


def index_key() -> IndexKey:
    return IndexKey(b"k" * 32, session_case_keys().suite)


async def assign(
    service: ComplaintService,
    handler: str,
    if_match: frozenset[int] | None = None,
    request: RequestInfo | None = None,
    token: Token | None = None,
) -> Rendered:
    command = AssignHandler(handler)
    return await service.handle(
        STAFF, CASE, command, if_match, request or RequestInfo(), rendered, token
    )


def service_over(commands: InMemoryCaseCommands) -> ComplaintService:
    return ComplaintService(
        FakePool(),  # type: ignore[arg-type]
        InMemoryEventReads(commands),  # type: ignore[arg-type]
        Institutions(),
        Calendars(),
        session_case_keys(),
        index_key(),
        today=lambda: DAY,
        policies=Policies(),  # type: ignore[arg-type]
        commands=commands,
    )


async def test_a_command_is_one_read_under_the_lock_and_one_write_that_frees_it(
    commands: InMemoryCaseCommands,
) -> None:
    service = service_over(commands)
    answer = await assign(service, "h-1")
    assert answer.body["version"] == 2
    assert commands.heads_asked == [None]
    assert commands.writes == 2  # the receipt, then this command
    assert commands.holder(CASE) is None
    assert answer.headers["Consistency-Position"] == str(commands.streams[CASE][-1].position)

    # the next command starts from the state this one left: it asks only for what came after
    await assign(service, "h-2")
    written = commands.streams[CASE]
    assert commands.heads_asked[1] == (2, written[1].hash)
    assert [event.version for event in written] == [1, 2, 3]


async def test_a_refused_command_writes_nothing_and_frees_the_lock(
    commands: InMemoryCaseCommands,
) -> None:
    service = service_over(commands)
    with pytest.raises(RuleViolation):
        await service.handle(STAFF, CASE, ResumeClock(DAY), None, RequestInfo(), rendered)
    assert commands.writes == 1
    assert commands.holder(CASE) is None


async def test_a_stale_if_match_is_412_and_frees_the_lock(commands: InMemoryCaseCommands) -> None:
    service = service_over(commands)
    with pytest.raises(PreconditionFailed) as refused:
        await assign(service, "h-1", if_match=frozenset({7}))
    assert refused.value.current_version == 1
    assert commands.writes == 1
    assert commands.holder(CASE) is None


async def test_a_race_lost_to_a_version_if_match_lists_is_decided_again(
    commands: InMemoryCaseCommands,
) -> None:
    """`If-Match: "1", "2"`: another writer takes the case from 1 to 2 meanwhile, a version the
    caller listed, so the command is decided again there, not refused 412 naming version 2."""
    service = service_over(commands)
    other = service_over(commands)

    async def the_other_command() -> None:
        await assign(other, "h-9")

    commands.before_next_write = lambda: _outside_the_lock(commands, the_other_command)
    answer = await assign(service, "h-1", if_match=frozenset({1, 2}))
    assert answer.body["version"] == 3
    assert commands.streams[CASE][2].data["handler_id"] == "h-1"


async def test_a_race_lost_to_a_version_if_match_does_not_list_is_412(
    commands: InMemoryCaseCommands,
) -> None:
    service = service_over(commands)
    other = service_over(commands)

    async def the_other_command() -> None:
        await assign(other, "h-9")

    commands.before_next_write = lambda: _outside_the_lock(commands, the_other_command)
    with pytest.raises(PreconditionFailed) as refused:
        await assign(service, "h-1", if_match=frozenset({1}))
    assert refused.value.current_version == 2


async def test_a_race_lost_to_another_writer_is_decided_again_on_the_newer_stream(
    commands: InMemoryCaseCommands,
) -> None:
    service = service_over(commands)
    other = service_over(commands)  # another process, writing the case meanwhile

    async def the_other_command() -> None:
        await assign(other, "h-9")

    # written while this command holds the lock: only a writer outside the locks can do that,
    # and the head check is what stops this command's events from forking the stream
    commands.before_next_write = lambda: _outside_the_lock(commands, the_other_command)
    answer = await assign(service, "h-1")
    stream = commands.streams[CASE]
    assert answer.body["version"] == len(stream) == 3
    assert [event.version for event in stream] == [1, 2, 3]
    assert stream[2].data["handler_id"] == "h-1"
    assert len(commands.heads_asked) == 3  # this command twice, the other once
    assert commands.holder(CASE) is None


async def _outside_the_lock(commands: InMemoryCaseCommands, command: Any) -> None:
    holder = commands._holders.pop(CASE)
    await command()
    commands._holders[CASE] = holder


async def test_a_stored_answer_is_replayed_without_a_write_and_the_lock_freed(
    commands: InMemoryCaseCommands,
) -> None:
    service = service_over(commands)
    request = IdempotentRequest("staff-a1", "BR-A", "key-1", "a" * 64)
    commands.responses["staff-a1", "BR-A", "key-1"] = StoredResponse(
        "a" * 64, 200, {"id": CASE, "respondent_institution": "BR-A"}, {"X": "1"}
    )
    answer = await assign(service, "h-1", request=RequestInfo(idempotency=request))
    assert (answer.status_code, answer.headers) == (200, {"X": "1"})
    assert commands.writes == 1
    assert commands.holder(CASE) is None

    reused = IdempotentRequest("staff-a1", "BR-A", "key-1", "b" * 64)
    with pytest.raises(IdempotencyKeyReused):
        await assign(service, "h-1", request=RequestInfo(idempotency=reused))
    assert commands.holder(CASE) is None


async def test_a_credential_not_confirmed_with_the_lock_acts_not(
    commands: InMemoryCaseCommands,
) -> None:
    service = service_over(commands)
    commands.principals["token-1"] = "someone-else"  # revoked, or given to another since seen
    token = Token("token-1", "staff-a1")
    with pytest.raises(ActorNotConfirmed):
        await assign(service, "h-1", token=token)
    assert commands.writes == 1
    assert commands.holder(CASE) is None

    commands.principals["token-1"] = "staff-a1"
    answer = await assign(service, "h-1", token=token)
    assert answer.body["version"] == 2
