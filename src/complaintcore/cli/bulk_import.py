"""`complaintcore import FILE`: historical cases from JSON Lines, through the domain rules, at bulk
speed (the format and the guarantees are in `application/bulk_import.py`).

Refused cases are listed on stderr by line number and rule code (the first 50, and all of them in
`--refusals FILE` as JSON Lines); the import goes on past them. A progress bar on stderr shows
events per second and the time left.

Ctrl-C stops the import once the batch in hand has committed (a second Ctrl-C at once, the batch
rolled back): the cases stored are whole, and the same command again skips them and imports the
rest.

Exit status: 0 when every case was imported or was already stored, 2 when some were refused, 1
when the file cannot be read, 130 when interrupted. Its arguments: `cli/parsers/bulk_import.py`.
"""

import argparse
import asyncio
import contextlib
import os
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import IO, BinaryIO

import orjson
from pydantic import ValidationError

from complaintcore.application.bulk_import import (
    ActorBody,
    BatchKeptMeetingWriters,
    BulkImporter,
    ImportReport,
    load_reference_data,
    numbered_lines,
)
from complaintcore.application.business_day import shanghai_today
from complaintcore.cli.common import (
    INTERRUPTED,
    KEY_REFUSALS,
    StopAtCommit,
    checked_case_keys,
    database_url,
    fail,
)
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.database import create_pool
from complaintcore.infra.migrations import upgrade_to_head
from complaintcore.infra.settings import Settings
from complaintcore.reference.files import UserFileRefused, open_user_file

EXIT_DONE = 0
EXIT_UNREADABLE = 1
EXIT_SOME_REFUSED = 2
REFUSALS_SHOWN = 50


def import_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        source = open_user_file(args.file, settings.max_file_bytes)
    except (OSError, ValueError) as error:
        return fail(f"{args.file}: {error}")
    if args.refusals is not None and _same_file(args.refusals, source.fileno()):
        # found by a review pass: the file's cases were replaced by its refusals
        source.close()
        return fail(f"--refusals {args.refusals}: is the file being imported")
    try:
        # opened before anything is imported (a path it cannot write changes nothing), and
        # emptied only once the import has ended (an interrupted one leaves it as it was)
        refusals_out = _opened_for_writing(args.refusals) if args.refusals is not None else None
    except OSError as error:
        source.close()
        return fail(f"--refusals {args.refusals}: {error.strerror or error}")
    total_bytes = os.fstat(source.fileno()).st_size
    try:
        actor = ActorBody(id=args.actor, role=args.role)
    except ValidationError as refused:
        source.close()
        return fail(f"--actor {args.actor!r}: {refused.errors()[0]['msg']}")
    stop = StopAtCommit()
    progress = Progress(total_bytes, sys.stderr, stop)
    with source, refusals_out or contextlib.nullcontext(), database_url(settings) as url:
        upgrade_to_head(url)
        counted = _CountingLines(source)
        try:
            with stop:
                report = asyncio.run(_import(url, settings, counted, actor, args.batch, progress))
        except KeyboardInterrupt:
            progress.end_line()
            return _interrupted(progress.last_report)
        except (UserFileRefused, _SourceUnreadable) as error:
            # The file grew past the limit, or failed, while it was read.
            progress.end_line()
            return fail(f"{args.file}: {error}; the batches before were imported")
        except KEY_REFUSALS as error:
            return fail(str(error))
        except BatchKeptMeetingWriters as error:
            progress.end_line()
            return fail(f"{error}; the batches before were imported: run the same import again")
        progress.finish(report)
        _show_refusals(report, refusals_out)  # before the with closes the file
    print(
        f"{report.cases_imported} cases imported ({report.events_imported} events),"
        f" {report.cases_skipped} already stored, {len(report.refusals)} refused"
    )
    return EXIT_SOME_REFUSED if report.refusals else EXIT_DONE


async def _import(
    url: str,
    settings: Settings,
    lines: "_CountingLines",
    actor: ActorBody,
    batch: int,
    progress: "Progress",
) -> ImportReport:
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as connection:
            case_keys = await checked_case_keys(settings, connection)
            reference = await load_reference_data(connection, shanghai_today(), actor)
            importer = BulkImporter(
                connection, PostgresEventStore(pool), reference, case_keys, batch
            )
            return await importer.run(
                numbered_lines(lines), lambda report: progress.show(report, lines.bytes_read)
            )
    finally:
        await pool.close()


class _SourceUnreadable(Exception):
    """The file failed as it was read (an I/O error): told apart from the database's errors,
    which are `OSError`s too (found by a review pass: a traceback)."""


class _CountingLines:
    """The file's lines, counting the bytes read so far (for the time left)."""

    def __init__(self, source: IO[bytes]) -> None:
        self._source = source
        self.bytes_read = 0

    def __iter__(self) -> Iterator[bytes]:
        lines = iter(self._source)
        while True:
            try:
                line = next(lines)
            except StopIteration:
                return
            except OSError as error:
                raise _SourceUnreadable(error.strerror or str(error)) from None
            self.bytes_read += len(line)
            yield line


def _interrupted(report: ImportReport | None) -> int:
    done = report or ImportReport()
    print(
        f"complaintcore: import interrupted after {done.cases_imported} cases imported"
        f" ({done.events_imported} events) and {len(done.refusals)} refused, each stored whole:"
        " run the same command again to import the rest (the cases stored are skipped)",
        file=sys.stderr,
    )
    return INTERRUPTED


class Progress:
    """A one-line progress bar: cases, events per second, time left (by bytes read). Told of
    each batch once it has committed, it is where a Ctrl-C noted by `stop` ends the import."""

    WIDTH = 30
    QUIET_INTERVAL_S = 5.0

    def __init__(self, total_bytes: int, out: IO[str], stop: StopAtCommit | None = None) -> None:
        self._total = max(total_bytes, 1)
        self._out = out
        self._tty = out.isatty()
        self._stop = stop
        self._started = time.monotonic()
        self._last_shown = 0.0
        self.last_report: ImportReport | None = None

    def show(self, report: ImportReport, bytes_read: int) -> None:
        self.last_report = report
        self._draw(report, bytes_read)
        if self._stop is not None:
            self._stop.raise_if_asked()

    def _draw(self, report: ImportReport, bytes_read: int) -> None:
        now = time.monotonic()
        if not self._tty and now - self._last_shown < self.QUIET_INTERVAL_S:
            return
        self._last_shown = now
        elapsed = max(now - self._started, 1e-6)
        done = min(bytes_read / self._total, 1.0)
        left = elapsed / done - elapsed if done > 0 else float("inf")
        filled = int(done * self.WIDTH)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        line = (
            f"[{bar}] {done:6.1%}  {report.cases_imported} cases,"
            f" {report.events_imported / elapsed:,.0f} events/s, {_duration(left)} left"
        )
        self._out.write(f"\r{line}" if self._tty else f"{line}\n")
        self._out.flush()

    def end_line(self) -> None:
        """Below the bar, on a terminal (where it is redrawn on one line)."""
        if self._tty:
            self._out.write("\n")

    def finish(self, report: ImportReport) -> None:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        self.end_line()
        self._out.write(
            f"done in {_duration(elapsed)}: {report.events_imported / elapsed:,.0f} events/s\n"
        )


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _same_file(path: Path, descriptor: int) -> bool:
    """Whether `path` names the open file `descriptor` (a path that is not there is not it)."""
    try:
        found = os.stat(path)
    except OSError:
        return False
    opened = os.fstat(descriptor)
    return (found.st_dev, found.st_ino) == (opened.st_dev, opened.st_ino)


def _opened_for_writing(path: Path) -> BinaryIO:
    """`path` opened to write, created if missing, its content left until it is truncated."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644), "wb")


def _show_refusals(report: ImportReport, out: BinaryIO | None) -> None:
    for refusal in report.refusals[:REFUSALS_SHOWN]:
        print(f"refused: {refusal.describe()}", file=sys.stderr)
    hidden = len(report.refusals) - REFUSALS_SHOWN
    if hidden > 0:
        print(f"... and {hidden} more refused", file=sys.stderr)
    if out is not None:
        # a regular file is emptied; /dev/null, a pipe or a terminal cannot be (found by a
        # review pass: after the import had committed, a traceback and exit 1, not 2)
        if stat.S_ISREG(os.fstat(out.fileno()).st_mode):
            out.truncate(0)
        for refusal in report.refusals:
            out.write(orjson.dumps(asdict(refusal)) + b"\n")
