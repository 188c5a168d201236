"""The ranges' scans in worker processes, each scanning one range at a time. The pool spawns
them, and each imports this module by its name to run `_worker_started` and
`scan_range_in_worker`; the parent reports progress from the ranges' rows and stops every worker
when one fails or it is interrupted."""

import asyncio
import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

import asyncpg

from complaintcore.projections.rebuild.protocol import Progress, RebuildSettings
from complaintcore.projections.rebuild.ranges import events_committed
from complaintcore.projections.rebuild.scan import (
    RangeScan,
    RangeScanOutcome,
    RangeScanTask,
    RebuildScanFailed,
)

# --- in the parent ------------------------------------------------------------------------------


async def scan_in_workers(
    connection: asyncpg.Connection,
    tasks: list[RangeScanTask],
    done: int,
    settings: RebuildSettings,
    progress: Progress,
) -> list[RangeScanOutcome]:
    """Each range in a worker process, reporting progress from the ranges' rows meanwhile;
    whatever ends this (the scan done, an interruption, a worker's error), every worker
    has stopped when it returns, its batch in flight committed."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    workers = min(settings.scan_workers, len(tasks))
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_worker_started, initargs=(stop,)
    ) as pool:
        with _sigint_blocked():  # the workers are spawned as the tasks are submitted
            scans = [asyncio.wrap_future(pool.submit(scan_range_in_worker, task)) for task in tasks]
        try:
            await _report_progress(connection, tasks[0].names[0], scans, done, settings, progress)
            return [scan.result() for scan in scans]
        finally:
            stop.set()
            await asyncio.wait(scans)
            for scan in scans:
                scan.exception()  # retrieved: the first error is the one raised


async def _report_progress(
    connection: asyncpg.Connection,
    name: str,
    scans: list["asyncio.Future[RangeScanOutcome]"],
    done: int,
    settings: RebuildSettings,
    progress: Progress,
) -> None:
    """Advance the progress by what the ranges committed until every scan has ended; raise
    `RebuildScanFailed` as soon as one fails."""
    pending: set[asyncio.Future[RangeScanOutcome]] = set(scans)
    while pending:
        _, pending = await asyncio.wait(
            pending, timeout=settings.progress_poll, return_when=asyncio.FIRST_EXCEPTION
        )
        for number, scan in enumerate(scans):
            if scan.done() and scan.exception() is not None:
                raise RebuildScanFailed(
                    f"the scan of range {number} of {len(scans)} failed: {scan.exception()}"
                ) from scan.exception()
        committed = await events_committed(connection, name)
        if committed > done:
            progress.advance(committed - done)
            done = committed


def summed_peaks(outcomes: list[RangeScanOutcome]) -> int:
    """The worker processes' peak RSS, each counted once (a worker may scan several ranges)."""
    peaks: dict[int, int] = {}
    for outcome in outcomes:
        if outcome.pid != os.getpid():
            peaks[outcome.pid] = max(peaks.get(outcome.pid, 0), outcome.peak_rss_kib)
    return sum(peaks.values())


# --- in a worker --------------------------------------------------------------------------------

_stop_scans: Any = None  # the parent's multiprocessing Event
_parent_pid = 0


@contextmanager
def _sigint_blocked() -> Iterator[None]:
    """SIGINT blocked in this thread meanwhile, and delivered (not lost) once unblocked.

    Why: Ctrl-C at a terminal signals the whole process group, the scan workers with it. A
    worker spawned meanwhile inherits the blocked mask through fork and exec, so one still
    importing the modules (half a second, before `_worker_started`) is not killed with a
    `KeyboardInterrupt` traceback on the terminal; the parent gets the signal once it unblocks
    and stops the workers as it always does."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _worker_started(stop: Any) -> None:
    """Ctrl-C is the parent's to handle (it asks the workers to stop): ignored here, and only
    then unblocked (the worker started with it blocked, `_sigint_blocked`), so one pending
    since the start is dropped."""
    global _stop_scans, _parent_pid
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _stop_scans, _parent_pid = stop, os.getppid()


def _asked_to_stop() -> bool:
    return _stop_scans.is_set() or os.getppid() != _parent_pid


def scan_range_in_worker(task: RangeScanTask) -> RangeScanOutcome:
    """A range's scan in a worker process. Its error comes back to the parent as a plain
    `RuntimeError` (some driver errors cannot be pickled) with the original's type and text."""
    try:
        return asyncio.run(RangeScan(task, stopping=_asked_to_stop).run())
    except Exception as error:
        raise RuntimeError(f"{type(error).__name__}: {error}") from None
