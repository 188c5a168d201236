"""An in-memory `CaseCommandStore` (the SQL of a command on a case, application/
case_command_store.py) and the pool and connections it is used with, for unit tests of
`ComplaintService`. tests/integration/test_case_command_store_contract.py holds it to the same
contract as the PostgreSQL one."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from complaintcore.application.case_command_store import (
    CaseWrite,
    Confirmation,
    LockedCase,
    Written,
)
from complaintcore.application.idempotency import IdempotentRequest, StoredResponse
from complaintcore.crypto.suites import suite_named
from complaintcore.domain.state import fold
from complaintcore.events.codec import domain_events, stream_suite
from complaintcore.events.memory import InMemoryEventStore
from complaintcore.events.model import GENESIS_HASH, ConcurrencyError, StoredEvent
from complaintcore.events.stream_cipher import StreamCipher
from complaintcore.projections.case_view import COLUMNS


class FakeConnection:
    """One database session, as far as the service uses it outside the store's SQL."""

    def is_in_transaction(self) -> bool:
        return False

    def is_closed(self) -> bool:
        return False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield


class FakePool:
    """Hands out a connection of its own to each acquirer (as many as asked)."""

    @asynccontextmanager
    async def acquire(self, timeout: float | None = None) -> AsyncIterator[FakeConnection]:
        yield FakeConnection()


class InMemoryEventReads:
    """The event store's reads the service makes outside a command's SQL (a merge target, the
    version after a lost race), over the fake's streams."""

    def __init__(self, commands: "InMemoryCaseCommands") -> None:
        self._commands = commands

    async def read_stream(self, stream_id: str, **_: Any) -> list[StoredEvent]:
        return list(self._commands.streams.get(stream_id, []))

    async def stream_version(self, stream_id: str, **_: Any) -> int:
        return len(self._commands.streams.get(stream_id, []))


class InMemoryCaseCommands:
    """Streams, case rows and stored responses in memory; the case locks held per connection.

    `lineages`, `wrapped_keys` and `principals` stand for the reference data read with the lock:
    each case's respondent lineage, each case's wrapped data key, and what each credential
    (`Confirmation.argument`) stands for now."""

    def __init__(self) -> None:
        self.streams: dict[str, list[StoredEvent]] = {}
        self.case_views: dict[str, tuple[Any, ...]] = {}
        self.responses: dict[tuple[str, str, str], StoredResponse] = {}
        self.lineages: dict[str, tuple[str, ...]] = {}
        self.wrapped_keys: dict[str, bytes] = {}
        self.principals: dict[Any, Any] = {}
        self.policy_stamp = 0
        self.calendar_stamp: str | None = None
        self.heads_asked: list[tuple[int, str] | None] = []
        self.writes = 0
        self.before_next_write: Callable[[], Awaitable[None]] | None = None
        """Run once, at the start of the next write: another process's command, say."""
        self._holders: dict[str, object] = {}
        self._lock_changed = asyncio.Condition()
        self._events = InMemoryEventStore()  # numbers, chains and positions the events

    def holder(self, case_id: str) -> object | None:
        return self._holders.get(case_id)

    async def read_locked(
        self,
        connection: Any,
        case_id: str,
        head: tuple[int, str] | None,
        confirmation: Confirmation | None,
        idempotency: IdempotentRequest | None,
    ) -> LockedCase:
        async with self._lock_changed:
            await self._lock_changed.wait_for(
                lambda: self._holders.get(case_id) in (None, connection)
            )
            self._holders[case_id] = connection
        self.heads_asked.append(head)
        stream = self.streams.get(case_id, [])
        found = head is not None and any((e.version, e.hash) == head for e in stream)
        events = [e for e in stream if e.version > head[0]] if found and head else list(stream)
        return LockedCase(
            events=events,
            after_head=found,
            respondent_lineage=self.lineages.get(case_id, ()),
            wrapped_key=self.wrapped_keys.get(case_id),
            policy_stamp=self.policy_stamp,
            calendar_stamp=self.calendar_stamp,
            actor=self.principals.get(confirmation.argument) if confirmation else None,
            stored_response=(
                self.responses.get(_key_of(idempotency)) if idempotency is not None else None
            ),
        )

    async def write(self, connection: Any, write: CaseWrite) -> Written:
        interleaved, self.before_next_write = self.before_next_write, None
        if interleaved is not None:
            await interleaved()
        stream = self.streams.setdefault(write.stream_id, [])
        head = (stream[-1].version, stream[-1].hash) if stream else (0, GENESIS_HASH)
        if head != write.head:
            raise ConcurrencyError(write.stream_id, write.head[0], None)
        appended = await self._events.append(write.stream_id, write.events, head[0])
        stream[:] = await self._events.read_stream(write.stream_id)
        self.case_views[write.stream_id] = write.case_view
        if write.response is not None:
            principal, scope, key, request_hash, status, body, headers = write.response
            headers = {**headers, "Consistency-Position": str(max(appended.positions))}
            self.responses[principal, scope, key] = StoredResponse(
                request_hash, status, body, headers
            )
        self.writes += 1
        if write.releases_lock:
            await self.release(connection)
        return Written(appended.positions, stream[-1].hash)

    async def lock_merge_target(self, connection: Any, case_id: str) -> None:
        async with self._lock_changed:
            await self._lock_changed.wait_for(
                lambda: self._holders.get(case_id) in (None, connection)
            )
            self._holders[case_id] = connection

    async def release(self, connection: Any) -> None:
        async with self._lock_changed:
            for case_id in [c for c, held_by in self._holders.items() if held_by is connection]:
                del self._holders[case_id]
            self._lock_changed.notify_all()

    async def stream_suites(self, connection: Any, stream_id: str) -> list[str | None]:
        return [event.metadata.cipher_suite for event in self.streams.get(stream_id, [])]

    async def barred_on_merged_duplicates(self, connection: Any, case_id: str) -> frozenset[str]:
        merged_into = COLUMNS.index("merged_into")
        barred: set[str] = set()
        for duplicate, row in sorted(self.case_views.items()):
            if row[merged_into] == case_id:
                stream = self.streams[duplicate]
                suite = stream_suite(stream)
                cipher = (
                    None if suite is None else StreamCipher(duplicate, suite_named(suite), None)
                )
                state = fold(domain_events(stream, cipher, frozenset()))
                assert state is not None
                barred |= state.barred_handlers
                # and the cases merged into that one, down the chain
                barred |= await self.barred_on_merged_duplicates(connection, duplicate)
        return frozenset(barred)


def _key_of(request: IdempotentRequest) -> tuple[str, str, str]:
    return request.principal_id, request.scope, request.key
