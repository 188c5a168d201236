"""The contract of a command's SQL (`CaseCommandStore`), held by the PostgreSQL store and by the
in-memory fake the service's unit tests use (tests/case_command_fakes.py)."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import pytest

from case_command_fakes import FakeConnection, InMemoryCaseCommands
from complaintcore.application.case_command_store import (
    CaseCommandStore,
    CaseWrite,
    PostgresCaseCommands,
)
from complaintcore.application.idempotency import IdempotentRequest, saved_values
from complaintcore.crypto.blind_index import IndexKey
from complaintcore.crypto.suites import suite_named
from complaintcore.domain import (
    DEFAULT_POLICY,
    AssignHandler,
    DecisionContext,
    Event,
    MergeComplaint,
    RecuseHandler,
    decide,
    evolve,
)
from complaintcore.domain.calendar import seeded_calendar
from complaintcore.domain.state import fold
from complaintcore.events.codec import new_events
from complaintcore.events.hashing import verify_chain
from complaintcore.events.model import GENESIS_HASH, ConcurrencyError, EventMetadata, NewEvent
from complaintcore.projections.case_view import case_view_values
from projection_support import receipt_command, received

DAY = date(2026, 3, 2)
INDEX_KEY = IndexKey(b"k" * 32, suite_named("aes-256-gcm"))
HASH = "a" * 64  # a request's sha256, as `IdempotentRequest.of` makes it
WAIT_S = 0.3  # how long a command that must wait is seen waiting


@dataclass
class Subject:
    store: CaseCommandStore
    connection: Callable[[], AbstractAsyncContextManager[Any]]


@pytest.fixture(params=["postgres", "in_memory"])
async def subject(request: pytest.FixtureRequest, pool: asyncpg.Pool) -> AsyncIterator[Subject]:
    if request.param == "in_memory":

        @asynccontextmanager
        async def fake() -> AsyncIterator[FakeConnection]:
            yield FakeConnection()

        yield Subject(InMemoryCaseCommands(), fake)
        return
    yield Subject(PostgresCaseCommands(), pool.acquire)


def receipt(case_id: str) -> tuple[list[NewEvent], tuple[Any, ...]]:
    """A complaint's first events, and its case row."""
    events = received(case_id, "BR-A", "HO", DAY)
    state = fold(events)
    assert state is not None
    return new_events(events, EventMetadata(actor_id="staff-1")), case_view_values(state, INDEX_KEY)


def later(count: int = 1) -> list[NewEvent]:
    return [NewEvent("CaseNoted", {"note": n}) for n in range(count)]


async def a_case(subject: Subject) -> tuple[str, tuple[int, str], tuple[Any, ...]]:
    """A new case written as a receipt is (no lock); its id, head and row."""
    case_id = str(uuid.uuid4())
    events, row = receipt(case_id)
    async with subject.connection() as connection:
        written = await subject.store.write(
            connection, CaseWrite(case_id, events, (0, GENESIS_HASH), row, None, False)
        )
    return case_id, (len(events), written.last_hash), row


async def test_a_case_is_read_whole_without_a_head_and_after_it_with_one(subject: Subject) -> None:
    case_id, head, row = await a_case(subject)
    async with subject.connection() as connection:
        whole = await subject.store.read_locked(connection, case_id, None, None, None)
        assert [event.version for event in whole.events] == list(range(1, head[0] + 1))
        assert (whole.events[-1].version, whole.events[-1].hash) == head
        assert not whole.after_head
        written = await subject.store.write(
            connection, CaseWrite(case_id, later(2), head, row, None, True)
        )
        assert len(written.positions) == 2
        assert written.positions[0] > whole.events[-1].position

        after = await subject.store.read_locked(connection, case_id, head, None, None)
        assert after.after_head
        assert [event.version for event in after.events] == [head[0] + 1, head[0] + 2]
        assert after.events[-1].hash == written.last_hash
        newest = await subject.store.read_locked(
            connection, case_id, (head[0] + 2, written.last_hash), None, None
        )
        assert newest.after_head and newest.events == []
        await subject.store.release(connection)
        chained = await subject.store.read_locked(connection, case_id, None, None, None)
        await subject.store.release(connection)
    assert verify_chain(chained.events).intact


async def test_a_head_the_stream_does_not_have_brings_the_whole_stream(subject: Subject) -> None:
    case_id, head, _ = await a_case(subject)
    async with subject.connection() as connection:
        read = await subject.store.read_locked(connection, case_id, (head[0], "e" * 64), None, None)
        await subject.store.release(connection)
    assert not read.after_head
    assert [event.version for event in read.events] == list(range(1, head[0] + 1))


async def test_a_write_on_a_stale_head_is_refused_and_writes_nothing(subject: Subject) -> None:
    case_id, head, row = await a_case(subject)
    async with subject.connection() as connection:
        await subject.store.read_locked(connection, case_id, None, None, None)
        await subject.store.write(connection, CaseWrite(case_id, later(), head, row, None, True))
        await subject.store.read_locked(connection, case_id, None, None, None)
        with pytest.raises(ConcurrencyError):
            await subject.store.write(
                connection, CaseWrite(case_id, later(), head, row, None, True)
            )
        await subject.store.release(connection)
        read = await subject.store.read_locked(connection, case_id, None, None, None)
        await subject.store.release(connection)
    assert len(read.events) == head[0] + 1


async def test_a_second_command_waits_for_the_lock_and_reads_what_the_first_wrote(
    subject: Subject,
) -> None:
    case_id, head, row = await a_case(subject)
    async with subject.connection() as first, subject.connection() as second:
        await subject.store.read_locked(first, case_id, head, None, None)
        waiting = asyncio.create_task(subject.store.read_locked(second, case_id, head, None, None))
        done, _ = await asyncio.wait({waiting}, timeout=WAIT_S)
        assert not done, "the second command read the case while the first held its lock"
        written = await subject.store.write(
            first, CaseWrite(case_id, later(), head, row, None, True)
        )
        read = await asyncio.wait_for(waiting, timeout=10)
        await subject.store.release(second)
    assert [event.hash for event in read.events] == [written.last_hash]


async def test_a_merge_locks_its_target_after_its_writer_has_committed(
    subject: Subject,
) -> None:
    """A merge into a case being written waits for that write to commit, then holds the case
    until it releases: a command on it waits meanwhile."""
    case_id, head, row = await a_case(subject)
    async with subject.connection() as writer, subject.connection() as merger:
        await subject.store.read_locked(writer, case_id, head, None, None)
        waiting = asyncio.create_task(subject.store.lock_merge_target(merger, case_id))
        done, _ = await asyncio.wait({waiting}, timeout=WAIT_S)
        assert not done, "the merge locked its target while a command on it held the lock"
        written = await subject.store.write(
            writer, CaseWrite(case_id, later(), head, row, None, True)
        )
        await asyncio.wait_for(waiting, timeout=10)
        # read now, the target is as its writer left it, committed
        target = await subject.store.read_locked(merger, case_id, None, None, None)
        assert target.events[-1].hash == written.last_hash
        next_command = asyncio.create_task(
            subject.store.read_locked(writer, case_id, None, None, None)
        )
        done, _ = await asyncio.wait({next_command}, timeout=WAIT_S)
        assert not done, "a command on the target went ahead of the merge"
        await subject.store.release(merger)
        await asyncio.wait_for(next_command, timeout=10)
        await subject.store.release(writer)


async def test_a_command_that_writes_nothing_releases_the_lock_for_the_next(
    subject: Subject,
) -> None:
    case_id, head, _ = await a_case(subject)
    async with subject.connection() as first, subject.connection() as second:
        await subject.store.read_locked(first, case_id, head, None, None)
        waiting = asyncio.create_task(subject.store.read_locked(second, case_id, head, None, None))
        done, _ = await asyncio.wait({waiting}, timeout=WAIT_S)
        assert not done
        await subject.store.release(first)
        read = await asyncio.wait_for(waiting, timeout=10)
        await subject.store.release(second)
    assert read.after_head and read.events == []


async def test_the_response_written_with_the_events_is_found_by_its_key(subject: Subject) -> None:
    case_id, head, row = await a_case(subject)
    request = IdempotentRequest("staff-1", "BR-A", "key-1", HASH)
    answer = saved_values(request, 200, {"id": case_id}, {"ETag": '"3"'})
    async with subject.connection() as connection:
        before = await subject.store.read_locked(connection, case_id, head, None, request)
        assert before.stored_response is None
        written = await subject.store.write(
            connection, CaseWrite(case_id, later(), head, row, answer, True)
        )
        found = await subject.store.read_locked(connection, case_id, head, None, request)
        other = IdempotentRequest("staff-1", "BR-B", "key-1", HASH)
        elsewhere = await subject.store.read_locked(connection, case_id, head, None, other)
        await subject.store.release(connection)
    assert found.stored_response is not None
    assert (found.stored_response.status_code, found.stored_response.body) == (200, {"id": case_id})
    assert found.stored_response.request_hash == HASH
    assert found.stored_response.headers == {
        "ETag": '"3"',
        "Consistency-Position": str(max(written.positions)),
    }
    assert elsewhere.stored_response is None


async def test_the_suites_of_a_stream_are_listed_in_order(subject: Subject) -> None:
    case_id, head, row = await a_case(subject)
    sealed = NewEvent("CaseNoted", {}, metadata=EventMetadata(cipher_suite="aes-256-gcm"))
    async with subject.connection() as connection:
        await subject.store.read_locked(connection, case_id, head, None, None)
        await subject.store.write(connection, CaseWrite(case_id, [sealed], head, row, None, True))
        suites = await subject.store.stream_suites(connection, case_id)
    assert suites == [None] * head[0] + ["aes-256-gcm"]


async def test_the_staff_barred_on_the_duplicates_merged_into_a_case_are_named(
    subject: Subject,
) -> None:
    """The staff a duplicate names or that recused from it, once it is merged into the case
    (Art. 17: the same complaint); a case with nothing merged into it bars nobody else."""
    target, _, _ = await a_case(subject)
    duplicate = str(uuid.uuid4())
    context = DecisionContext(
        today=DAY,
        calendar=seeded_calendar(),
        policy=DEFAULT_POLICY,
        actor_id="staff-1",
        actor_role="staff",
        superior_of_respondent="HO",
    )
    state = None
    events: list[Event] = []
    for command in (
        receipt_command(duplicate, "BR-A-2", "BR-A", DAY, staff=("staff-x7",)),
        AssignHandler("staff-r1"),
        RecuseHandler("staff-r1", "与投诉人系亲属"),
        MergeComplaint(target),
    ):
        for event in decide(state, command, context):
            state = evolve(state, event)
            events.append(event)
    assert state is not None and state.merged_into == target
    async with subject.connection() as connection:
        assert await subject.store.barred_on_merged_duplicates(connection, target) == frozenset()
        await subject.store.write(
            connection,
            CaseWrite(
                duplicate,
                new_events(events, EventMetadata(actor_id="staff-1")),
                (0, GENESIS_HASH),
                case_view_values(state, INDEX_KEY),
                None,
                False,
            ),
        )
        barred = await subject.store.barred_on_merged_duplicates(connection, target)
        assert await subject.store.barred_on_merged_duplicates(connection, duplicate) == frozenset()
    assert barred == {"staff-x7", "staff-r1"}
