"""`complaintcore serve` and `complaintcore migrate` (their arguments: `cli/parsers/server.py`)."""

import argparse
import asyncio
import os
import signal
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from complaintcore.application.master_key import (
    check_against_database,
    load_key_provider,
    resolve_master_key_file,
)
from complaintcore.cli.common import KEY_REFUSALS, database_url, fail, key_ids_at
from complaintcore.cli.runner_supervisor import RunnerSupervisor
from complaintcore.crypto.keys import KeyProvider, MasterKeyError
from complaintcore.infra.database import (
    DATABASE_UNAVAILABLE_ERRORS,
    connect_each_host,
    plain_url,
    wait_until_reachable,
)
from complaintcore.infra.migrations import upgrade_to_head
from complaintcore.infra.settings import Settings

log = structlog.get_logger("complaintcore.cli")

# infra/metrics.py's folder variable, named here: importing that module would import
# prometheus_client in this process before the variable is set
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# projections/runner.py's, named here for the same reason: which `serve` its workers and its
# runner child belong to (the child's sessions are named after it, for "here" in the lags)
SERVE_ID_VARIABLE = "COMPLAINTCORE_SERVE_ID"
RUNNERS_VARIABLE = "COMPLAINTCORE_RUNNERS"


def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    with database_url(settings) as url:
        try:
            key_file, _ = key_and_database(url, settings, migrate=True)
        except StartRefused as refused:
            return fail(str(refused))
        os.environ["DATABASE_URL"] = url
        # the workers load the same file (api/app.py), checked here already
        os.environ["COMPLAINTCORE_MASTER_KEY_FILE"] = str(key_file)
        # the workers read where the runners run (api/app.py): the option wins over the setting
        runners = args.runners or settings.runners
        os.environ[RUNNERS_VARIABLE] = runners
        os.environ[SERVE_ID_VARIABLE] = f"{socket.gethostname()}:{os.getpid()}"
        with _metrics_folder():  # the runner child writes its samples there too
            if runners != "separate":
                _run_uvicorn(uvicorn, args, settings)
                return 0
            supervisors = [RunnerSupervisor() for _ in range(settings.runner_processes)]
            with _sigterm_as_exit():
                for supervisor in supervisors:
                    supervisor.start()
                try:
                    _run_uvicorn(uvicorn, args, settings)
                finally:
                    for supervisor in supervisors:
                        supervisor.request_stop()
                    for supervisor in supervisors:
                        supervisor.stop()
    return 0


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """SIGTERM as SystemExit (unless something set a handler already: the embedded database
    does the same), so that once uvicorn has shut down on it and raised it again, `serve` stops
    its runner process on the way out rather than ending at once."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def raise_system_exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, raise_system_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class StartRefused(Exception):
    """Why a long-running command (serve, runners) does not start: one line."""


def key_and_database(url: str, settings: Settings, *, migrate: bool) -> tuple[Path, KeyProvider]:
    """The master key loaded, the database reached (waited for), migrated (`migrate`) and the key
    checked against it: the key file and its provider; `StartRefused` otherwise. The key before
    the database: a service that could not read a case refuses at once (for the embedded default,
    once its data folder exists: the key file lives in it)."""
    try:
        key_file = resolve_master_key_file(
            settings, embedded=not settings.database_url, database_key_ids=key_ids_at(url)
        )
        provider = load_key_provider(key_file, settings.cipher_suite)
    except KEY_REFUSALS as error:
        raise StartRefused(str(error)) from None
    if (refusal := database_unreachable(url, settings)) is not None:
        raise StartRefused(refusal)
    if migrate:
        upgrade_to_head(url)
    try:
        asyncio.run(check_key(url, provider))
    except MasterKeyError as error:
        raise StartRefused(str(error)) from None
    log.info("master key accepted", path=str(key_file), key_id=provider.key_id)
    return key_file, provider


def database_unreachable(url: str, settings: Settings) -> str | None:
    """Wait up to `COMPLAINTCORE_DATABASE_WAIT` for the database; the one-line refusal if it
    never answered, else None."""
    try:
        asyncio.run(wait_until_reachable(url, settings.database_wait_s))
    except asyncpg.ClientConfigurationError:
        raise  # not waited for: the command line's one line for it, as every command's
    except DATABASE_UNAVAILABLE_ERRORS as error:
        return (
            f"the database is unreachable after {settings.database_wait_s:g} s: "
            f"{type(error).__name__}: {error}"
        )
    return None


@contextmanager
def _metrics_folder() -> Iterator[None]:
    """A fresh folder where every worker writes its metrics' samples (infra/metrics.py), set
    before uvicorn starts them (prometheus_client reads it when first imported: not yet, in this
    process), removed when they have stopped. A folder left from an earlier run would count its
    samples again."""
    with tempfile.TemporaryDirectory(prefix="complaintcore-metrics-") as folder:
        os.environ[MULTIPROCESS_DIR_VARIABLE] = folder
        try:
            yield
        finally:
            os.environ.pop(MULTIPROCESS_DIR_VARIABLE, None)


def _run_uvicorn(uvicorn: Any, args: argparse.Namespace, settings: Settings) -> None:
    uvicorn.run(
        "complaintcore.api.app:create_app_from_environment",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        access_log=False,
        log_config=None,
        # httptools with header and body timeouts, header size and count limits, and
        # problem+json refusals (api/http_protocol.py); an import string, as each worker
        # imports it
        http="complaintcore.api.http_protocol:LimitedHttpToolsProtocol",
        # defence in depth: an idle keep-alive connection closes after 5 s (uvicorn's
        # default, made explicit: a proxy's upstream keep-alive must be shorter), and the h11
        # protocol, if ever chosen instead, buffers no more headers than the limit
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )


async def check_key(url: str, provider: KeyProvider) -> None:
    connection = await connect_each_host(plain_url(url))
    try:
        await check_against_database(connection, provider)
    finally:
        await connection.close()


def migrate(args: argparse.Namespace, settings: Settings) -> int:
    with database_url(settings) as url:
        if (refusal := database_unreachable(url, settings)) is not None:
            return fail(refusal)
        upgrade_to_head(url)
    log.info("migrations applied")
    return 0
