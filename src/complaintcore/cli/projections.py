"""`complaintcore projections rebuild [NAME ...]`: rebuild projections from the events alone.

The rebuild itself is `projections/rebuild/` (its docstring describes the protocol); this is
the command around it: a progress bar with events per second and time left (tqdm, on stderr),
`--workers` scan processes, Ctrl-C to stop, and the same command again to resume. Its arguments:
`cli/parsers/projections.py`.
"""

import argparse
import asyncio
import sys

import asyncpg
from tqdm import tqdm

from complaintcore.cli.common import (
    INTERRUPTED,
    KEY_REFUSALS,
    checked_case_keys,
    database_url,
    fail,
    run_with_pool,
)
from complaintcore.events.case_keys import CaseKeys
from complaintcore.infra.migrations import upgrade_to_head
from complaintcore.infra.settings import Settings
from complaintcore.projections.rebuild import (
    TARGETS,
    RebuildAlreadyRunning,
    RebuildScanFailed,
    RebuildSettings,
    StandbyBehind,
    default_scan_workers,
    rebuild,
)


class BarProgress:
    """A tqdm bar over the events of the scan; the other phases as one line each."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None

    def scanning(self, name: str, total: int, done: int) -> None:
        self.close()
        self._bar = tqdm(
            total=total,
            initial=done,
            desc=f"{name}: replaying",
            unit=" events",
            unit_scale=True,
            smoothing=0.1,
            file=sys.stderr,
        )

    def advance(self, events: int) -> None:
        if self._bar is not None:
            self._bar.update(events)

    def phase(self, name: str, text: str) -> None:
        self.close()
        print(f"{name}: {text}", file=sys.stderr)

    def finished(self, name: str) -> None:
        self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def rebuild_command(args: argparse.Namespace, settings: Settings) -> int:
    unknown = [name for name in args.names if name not in TARGETS]
    if unknown:
        return fail(f"unknown projection(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    progress = BarProgress()
    with database_url(settings) as url:
        upgrade_to_head(url)
        try:
            case_keys = run_with_pool(url, lambda pool: _case_keys(pool, settings))
        except KEY_REFUSALS as error:
            return fail(str(error))
        try:
            rebuild_settings = RebuildSettings(
                page_events=args.batch,
                flush_rows=max(1, args.batch // 2),
                scan_workers=args.workers or default_scan_workers(),
                key_provider=case_keys.provider,
                read_url=args.read_from,
            )
            results = asyncio.run(
                rebuild(
                    url,
                    args.names,
                    restart=args.restart,
                    progress=progress,
                    settings=rebuild_settings,
                )
            )
        except KeyboardInterrupt:
            progress.close()
            print(
                "complaintcore: rebuild interrupted; run the same command again to resume",
                file=sys.stderr,
            )
            return INTERRUPTED
        except (RebuildAlreadyRunning, RebuildScanFailed, StandbyBehind) as refused:
            progress.close()
            return fail(str(refused))
        except KEY_REFUSALS as refused:
            # the keys were rotated after the check above (found by a review pass: a traceback)
            progress.close()
            return fail(f"the rebuild stopped: {refused}; run it again with the current key file")
    for result in results:
        resumed = " (resumed)" if result.resumed else ""
        print(f"{result.name}: rebuilt{resumed}, at feed position {result.position}")
    events = max((result.events for result in results), default=0)
    seconds = sum(result.seconds for result in results)
    rate = events / seconds if seconds > 0 else 0.0
    print(f"{events} events replayed in {seconds:.1f} s ({rate:,.0f} events/s)")
    return 0


async def _case_keys(pool: asyncpg.Pool, settings: Settings) -> CaseKeys:
    async with pool.acquire() as connection:
        return await checked_case_keys(settings, connection)
