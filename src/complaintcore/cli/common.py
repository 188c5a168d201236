"""What every command of the command line shares: the database it works on, a pool for one job,
and the one-line refusal."""

import asyncio
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import asyncpg
import structlog

from complaintcore.application.master_key import (
    case_keys_of,
    check_against_database,
    database_key_ids,
    load_key_provider,
    resolve_master_key_file,
)
from complaintcore.crypto.keys import MasterKeyError
from complaintcore.crypto.suites import SuiteUnavailable, UnknownSuite
from complaintcore.events.case_keys import CaseKeys
from complaintcore.infra.database import create_pool
from complaintcore.infra.embedded_db import (
    DATABASE_NAME,
    ensure_database,
    running_embedded_postgres,
)
from complaintcore.infra.settings import Settings

log = structlog.get_logger("complaintcore.cli")

T = TypeVar("T")

INTERRUPTED = 130  # the shell's code for a command ended by SIGINT


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """`DATABASE_URL`, or the embedded PostgreSQL (started here, stopped on the way out)."""
    if settings.database_url:
        yield settings.database_url
        return
    with running_embedded_postgres(settings.data_dir) as server_url:
        url = asyncio.run(ensure_database(server_url, DATABASE_NAME))
        log.info("embedded PostgreSQL started", data_dir=str(settings.data_dir.resolve()))
        yield url
    log.info("embedded PostgreSQL released (stopped unless another process still uses it)")


def run_with_pool(url: str, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    async def run() -> T:
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(run())


def fail(message: str) -> int:
    print(f"complaintcore: {message}", file=sys.stderr)
    return 1


# What a command meets when the database cannot be used at all: not there, not answering, not
# letting it in. `migrate` and `serve` wait for the database first (COMPLAINTCORE_DATABASE_WAIT);
# every command answers these with one line.
_CANNOT_CONNECT = (
    ConnectionError,
    socket.gaierror,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.TargetServerAttributeNotMatched,  # no host of the kind the URL asks for, yet
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.ClientConfigurationError,  # a DATABASE_URL asyncpg cannot read (the message says why)
)
DATABASE_REFUSALS = (*_CANNOT_CONNECT, asyncpg.PostgresError)


def database_refusal(error: BaseException) -> str:
    """The one-line message of a `DATABASE_REFUSALS` error. Another database error (a value it
    would not take) is named by its type and SQLSTATE only: its message may quote the value."""
    if isinstance(error, _CANNOT_CONNECT):
        return f"the database cannot be used: {type(error).__name__}: {error}"
    sqlstate = getattr(error, "sqlstate", None)
    return f"the database refused the command: {type(error).__name__} (SQLSTATE {sqlstate})"


# What a command refuses to run on when the master key or the suite will not do: one-line messages.
KEY_REFUSALS = (MasterKeyError, SuiteUnavailable, UnknownSuite)


async def checked_case_keys(settings: Settings, connection: asyncpg.Connection) -> CaseKeys:
    """The case keys of a command that reads or writes personal data, under the master key
    `serve` would use (the embedded default's file, or `COMPLAINTCORE_MASTER_KEY_FILE`),
    checked against the database's keys. Raises what `serve` refuses to start on
    (`KEY_REFUSALS`)."""
    held = await database_key_ids(connection)
    key_file = resolve_master_key_file(
        settings, embedded=not settings.database_url, database_key_ids=lambda: held
    )
    provider = load_key_provider(key_file, settings.cipher_suite)
    await check_against_database(connection, provider, held)
    return case_keys_of(provider, settings.cipher_suite)


def key_ids_at(url: str) -> Callable[[], set[str]]:
    """For `resolve_master_key_file`: the ids of the keys the database at `url` holds, read
    only if asked (a missing embedded key file)."""

    async def read(pool: asyncpg.Pool) -> set[str]:
        async with pool.acquire() as connection:
            return await database_key_ids(connection)

    return lambda: run_with_pool(url, read)


class StopAtCommit:
    """Ctrl-C for a batch job that commits in batches and reports after each (`raise_if_asked`):
    the first SIGINT is noted and the job stops with `KeyboardInterrupt` at its next report, once
    the batch in hand has committed; a second one stops it at once. Depends on no task
    cancellation reaching the code awaited at the moment of the signal."""

    def __init__(self) -> None:
        self.asked = False

    def __enter__(self) -> "StopAtCommit":
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _on_sigint(self, signum: int, frame: object) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True

    def raise_if_asked(self) -> None:
        if self.asked:
            raise KeyboardInterrupt
