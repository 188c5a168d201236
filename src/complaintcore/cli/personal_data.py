"""`complaintcore personal-data sweep`: erase the personal data of every case past its retention.

The sweep itself is `application/retention_sweep.py` (its docstring says why it never leaves a
case half-erased, and why several hosts may run it at once); this is the command around it: the
master key checked as `serve` checks it (a wrong key file refuses before anything is written), a
progress bar on stderr (tqdm), the ids of the cases a dry run would erase and a summary on stdout,
Ctrl-C (or any kill) to stop, and the same command again to resume. Nothing personal is printed:
case ids, counts and rule codes only. Its arguments: `cli/parsers/personal_data.py`.

Exit status: 0 when every case was judged (erased or counted as not erased), 1 when the command
refuses to run (a date after today, the master key), 130 when interrupted.
"""

import argparse
import asyncio
import sys
import uuid

import structlog
from tqdm import tqdm

from complaintcore.application.business_day import shanghai_today
from complaintcore.application.retention_sweep import (
    BatchSwept,
    RetentionSweep,
    SweepOrder,
    SweepReport,
)
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

log = structlog.get_logger("complaintcore.cli")


class SweepProgress:
    """A tqdm bar over the cases due (on stderr); in a dry run, the ids of the cases that would
    be erased, printed above it (on stdout). Told of each batch once it has committed, it is
    where a Ctrl-C noted by `stop` ends the sweep."""

    def __init__(self, dry_run: bool, stop: StopAtCommit | None = None) -> None:
        self._dry_run = dry_run
        self._stop = stop
        self._bar: tqdm | None = None
        self.erased = 0  # in a dry run, the cases that would be

    def start(self, cases_due: int) -> None:
        self._bar = tqdm(
            total=cases_due,
            desc="judging (dry run)" if self._dry_run else "erasing",
            unit=" cases",
            smoothing=0.1,
            file=sys.stderr,
        )

    def batch(self, swept: BatchSwept) -> None:
        self.erased += len(swept.erased)
        if self._dry_run:
            for case_id in swept.erased:
                tqdm.write(case_id, file=sys.stdout)
        if self._bar is not None:
            self._bar.set_postfix_str(
                f"{self.erased} {'erasable' if self._dry_run else 'erased'}", refresh=False
            )
            self._bar.update(swept.judged)
        if self._stop is not None:
            self._stop.raise_if_asked()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def sweep_command(args: argparse.Namespace, settings: Settings) -> int:
    today = shanghai_today()
    on = args.on or today
    if on > today:
        return fail(
            f"--on {on.isoformat()} is after today ({today.isoformat()} in Asia/Shanghai):"
            " an erasure is never dated ahead"
        )
    try:
        order = SweepOrder(
            on=on,
            correlation_id=f"sweep-{uuid.uuid4()}",
            reason=args.reason,
            legal_basis=args.legal_basis,
            actor_id=args.actor,
            dry_run=args.dry_run,
            batch_cases=args.batch,
        )
    except ValueError as error:
        return fail(str(error))
    stop = StopAtCommit()
    progress = SweepProgress(args.dry_run, stop)
    with database_url(settings) as url:
        upgrade_to_head(url)
        try:
            with stop:
                report = asyncio.run(_sweep(url, settings, order, progress))
        except KEY_REFUSALS as error:
            progress.close()
            return fail(str(error))
        except KeyboardInterrupt:
            progress.close()
            print(
                f"complaintcore: sweep interrupted after {progress.erased:,} cases"
                f" {'found erasable' if order.dry_run else 'erased'}; every case is erased whole"
                " or still held: run the same command again to resume",
                file=sys.stderr,
            )
            return INTERRUPTED
    progress.close()
    log.info(
        "retention sweep finished",
        on=on.isoformat(),
        dry_run=order.dry_run,
        erased=report.erased,
        not_erased=dict(report.skipped),
        correlation_id=order.correlation_id,
    )
    print(summary(report, order))
    return 0


async def _sweep(
    url: str, settings: Settings, order: SweepOrder, progress: SweepProgress
) -> SweepReport:
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as connection:
            case_keys = await checked_case_keys(settings, connection)
            sweep = RetentionSweep(connection, PostgresEventStore(pool), case_keys, order)
            progress.start(await sweep.cases_due())
            return await sweep.run(progress.batch)
    finally:
        await pool.close()


def summary(report: SweepReport, order: SweepOrder) -> str:
    """One line: what was erased (or would be), how fast, and why the others were not."""
    as_of = f"as of {order.on.isoformat()}"
    if order.dry_run:
        done = f"would erase {report.erased:,} cases {as_of} (dry run: nothing written)"
    else:
        done = (
            f"erased {report.erased:,} cases {as_of} in {report.seconds:.1f} s"
            f" ({report.rate:,.0f} cases/s), correlation id {order.correlation_id}"
        )
    skipped = sum(report.skipped.values())
    if not skipped:
        return f"{done}; none left held"
    reasons = ", ".join(f"{count:,} {code}" for code, count in sorted(report.skipped.items()))
    return f"{done}; not erased: {skipped:,} ({reasons})"
