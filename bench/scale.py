"""`make bench-scale`: one primary grown to millions of cases (issue 17, item 5).

    python -m bench.scale [--cases N] [--quick] [--results DIR]

On an embedded PostgreSQL of its own under `.pgdata-scale/` (git-ignored; or on `DATABASE_URL`'s
server), a fresh database `complaintcore_scale`: a seed of histories imported through the bulk
import, then copied as new cases (`figures.copy_histories`, each copy sealed under a key of its
own) in steps up to `--cases` cases. After each step: the copy rate, the disk used by `events`
(table, indexes, TOAST), `case_keys` and the whole database, then the store append rate (16
concurrent single-event appends, `figures.store_append`, into the grown table itself; those
events, no complaint's, are deleted after: `remove_appended`). After the first step and at the
end a full projection rebuild in a child process (rate, peak RSS); then the deadline queries and
the head office's yearly statistics over HTTP on the grown store.

Two guards, both recorded in the results: growth stops early if the next step would leave less
than `DISK_RESERVE_BYTES` free on the data folder's disk (from the bytes per event measured so
far), or if the time left would not cover the next step and the finishing work (the final
rebuild, timed from the first step's rebuild rate, and the queries) within `--budget-minutes`
(88 by default, for `make bench-scale` to end within 90 minutes).
Writes `scale-<size>.json` and `scale-<size>.md` under `--results`; exits 0 whatever the
figures.
"""

import argparse
import asyncio
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import asyncpg

from bench import baselines, figures, histories, probes
from bench.database import bench_server, fresh_database, server_settings
from bench.report import info_row, machine, table, write_json
from bench.run import RebuildFailed, rebuild_once
from bench.service import serving
from complaintcore.infra.embedded_db import running_embedded_postgres

RESULTS = Path(__file__).resolve().parent / "results"
SCALE_DATA_DIR = Path(__file__).resolve().parents[1] / ".pgdata-scale"
SCALE_DATABASE = "complaintcore_scale"
DISK_RESERVE_BYTES = 10 * 2**30  # growth stops before leaving less than this free
# The child rebuild's timeout here: the bench's 900 s is short for tens of millions of events on
# 2 cores.
REBUILD_TIMEOUT_S = 40 * 60
QUERIES_S = 120  # after the last rebuild: fills, serve, deadline and statistics queries
REBUILD_MARGIN = 1.2  # the final rebuild's estimate: the first step's rate, 20 % slower


@dataclass(frozen=True)
class ScaleSizes:
    name: str
    cases: int
    seed_cases: int  # imported through the bulk import, then copied
    steps: int
    append_seconds: float  # each step's store append window
    latency_seconds: float  # each query's one-at-a-time window
    case_view_fill: int  # bulk rows added to case_view for the deadline queries (as make bench)
    budget_s: float


FULL = ScaleSizes("full", 5_000_000, 10_000, 10, 5, 5, 1_000_000, 88 * 60)
QUICK = ScaleSizes("quick", 20_000, 2_000, 4, 2, 1.5, 10_000, 10 * 60)


def log(message: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def copy_steps(cases: int, seed_cases: int, steps: int) -> list[tuple[int, int]]:
    """The copies of the seed each step makes, as (first copy, last copy): the seed plus its
    copies reach `cases` cases (rounded up to whole copies), cut into at most `steps` steps as
    even as can be, none empty."""
    copies = max(0, math.ceil(cases / seed_cases) - 1)
    cuts = sorted({copies * n // steps for n in range(steps + 1)})
    return [(first + 1, last) for first, last in pairwise(cuts)]


def disk_allows(free_bytes: int, bytes_per_event: float, events_to_add: int) -> bool:
    """Whether adding `events_to_add` events at `bytes_per_event` leaves the reserve free."""
    return free_bytes - bytes_per_event * events_to_add >= DISK_RESERVE_BYTES


def finishing_seconds(events: int, rebuild_events_per_second: float) -> float:
    """The work after growth: the final rebuild of `events` events (at the rate measured, with a
    margin) and the queries."""
    return events / rebuild_events_per_second * REBUILD_MARGIN + QUERIES_S


def time_allows(
    elapsed: float,
    budget: float,
    step_seconds: float,
    events_after_step: int,
    rebuild_events_per_second: float,
) -> bool:
    """Whether one more step, of about `step_seconds` (as the last one took), and the finishing
    work over the grown store still end within `budget`, and the final rebuild within the
    child's timeout."""
    finish = finishing_seconds(events_after_step, rebuild_events_per_second)
    rebuild = finish - QUERIES_S
    return elapsed + step_seconds + finish <= budget and rebuild <= REBUILD_TIMEOUT_S


def mib(size: int) -> float:
    return round(size / 2**20, 1)


@contextmanager
def scale_server() -> Iterator[tuple[str, Path]]:
    """The server's maintenance URL and the folder whose disk it writes to: `DATABASE_URL`'s
    server (the disk checked is then the current folder's), or an embedded one of its own."""
    if os.environ.get("DATABASE_URL"):
        with bench_server() as url:
            yield url, Path.cwd()
        return
    with running_embedded_postgres(SCALE_DATA_DIR) as url:
        yield url, SCALE_DATA_DIR


_SIZES = """
SELECT pg_relation_size('events') AS events_heap,
    pg_indexes_size('events') AS events_indexes,
    pg_total_relation_size('events') AS events_total,
    pg_total_relation_size('case_keys') AS case_keys_total,
    pg_database_size(current_database()) AS database,
    (SELECT count(*) FROM events) AS events,
    (SELECT count(*) FROM case_keys) AS cases
"""


def disk_used(url: str) -> dict[str, int]:
    """Sizes in bytes (events heap, its indexes, events with TOAST and indexes, case keys, the
    database), and the events and cases stored."""

    async def read() -> dict[str, int]:
        connection = await asyncpg.connect(url)
        try:
            return dict(await connection.fetchrow(_SIZES))
        finally:
            await connection.close()

    return asyncio.run(read())


async def remove_appended(url: str) -> int:
    """Delete the events the append measurement wrote (`figures.store_append`'s streams, which
    are no complaint's and which the rebuild would refuse), past the store's refusal trigger: the
    server's superuser with `session_replication_role = replica`. They are a few seconds' worth
    of appends; measured in the grown table, then gone before the disk and the rebuild see them."""
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            status = await connection.execute("DELETE FROM events WHERE stream_id LIKE 'store-%'")
        return int(status.split()[-1])
    finally:
        await connection.close()


def wal_bytes(data_dir: Path) -> int | None:
    """The WAL folder's size on disk (the embedded server's only)."""
    folder = data_dir / "pg_wal"
    if not folder.is_dir():
        return None
    return sum(entry.stat().st_size for entry in folder.iterdir() if entry.is_file())


@dataclass
class Step:
    number: int
    cases: int
    events: int
    elapsed_s: float
    copy_seconds: float
    copy_events_per_second: float
    append_events_per_second: float  # after a CHECKPOINT: the store at rest
    appended_then_removed: int  # dead rows until vacuumed: counted in the next steps' sizes
    append_p50_ms: float
    append_p99_ms: float
    append_after_copy_events_per_second: float  # straight after the copy, its writes in flight
    append_after_copy_p99_ms: float
    checkpoint_seconds: float  # the CHECKPOINT between the two windows
    events_total_mib: float
    events_heap_mib: float
    events_indexes_mib: float
    case_keys_mib: float
    database_mib: float
    wal_mib: float | None
    bytes_per_event_events_table: float
    bytes_per_event_database: float
    free_disk_gib: float
    load_average: list[float]


def measure_step(
    url: str,
    data_dir: Path,
    number: int,
    copied: tuple[int, float],
    sizes: ScaleSizes,
    started: float,
) -> Step:
    """The disk used, then the store append rate into the grown table twice: straight after the
    copy (its writes still going to disk) and after a CHECKPOINT (at rest): one step's row."""
    copied_events, copy_seconds = copied
    used = disk_used(url)
    wal = wal_bytes(data_dir)
    after_copy = asyncio.run(figures.store_append(url, sizes.append_seconds))
    checkpoint_started = time.monotonic()
    asyncio.run(baselines.settle(url))
    checkpoint_seconds = time.monotonic() - checkpoint_started
    appended = asyncio.run(figures.store_append(url, sizes.append_seconds))
    removed = asyncio.run(remove_appended(url))
    events = max(used["events"], 1)
    return Step(
        number=number,
        cases=used["cases"],
        events=used["events"],
        elapsed_s=round(time.monotonic() - started, 1),
        copy_seconds=round(copy_seconds, 1),
        copy_events_per_second=round(copied_events / max(copy_seconds, 1e-3)),
        append_events_per_second=round(appended.per_second),
        appended_then_removed=removed,
        append_p50_ms=round(appended.percentile(50), 2),
        append_p99_ms=round(appended.percentile(99), 2),
        append_after_copy_events_per_second=round(after_copy.per_second),
        append_after_copy_p99_ms=round(after_copy.percentile(99), 2),
        checkpoint_seconds=round(checkpoint_seconds, 1),
        events_total_mib=mib(used["events_total"]),
        events_heap_mib=mib(used["events_heap"]),
        events_indexes_mib=mib(used["events_indexes"]),
        case_keys_mib=mib(used["case_keys_total"]),
        database_mib=mib(used["database"]),
        wal_mib=None if wal is None else mib(wal),
        bytes_per_event_events_table=round(used["events_total"] / events),
        bytes_per_event_database=round(used["database"] / events),
        free_disk_gib=round(shutil.disk_usage(data_dir).free / 2**30, 1),
        load_average=[round(x, 2) for x in os.getloadavg()],
    )


def seed(url: str, sizes: ScaleSizes) -> tuple[str, list[str]]:
    """The institution tree and a supervisor's token; the seed histories imported; their ids."""
    token = asyncio.run(figures.seed_reference_data(url))
    lines = list(histories.case_lines(sizes.seed_cases))
    imported, _ = asyncio.run(figures.bulk_import(url, lines))
    log(f"seed: {sizes.seed_cases:,} cases, {imported.operations:,} events imported")
    source = histories.case_ids(sizes.seed_cases)
    return token, source


def copy_step(url: str, source: list[str], first: int, last: int) -> tuple[int, float]:
    """Copies `first` to `last` of the seed: (events added, seconds)."""
    before = figures.event_count(url)
    copying = time.monotonic()
    asyncio.run(figures.copy_histories(url, source, first, last))
    seconds = time.monotonic() - copying
    return figures.event_count(url) - before, seconds


@dataclass(frozen=True)
class RebuildFigure:
    events: int
    cases: int
    seconds: float | None
    events_per_second: float | None
    peak_rss_mib: float | None
    failed: str | None = None


def rebuild_figure(url: str) -> RebuildFigure:
    """A full rebuild of every projection in a child process (`run.rebuild_once`), or why it
    failed."""
    events, cases = figures.event_count(url), disk_used(url)["cases"]
    asyncio.run(baselines.settle(url))
    try:
        run = rebuild_once(url, f"{cases:,}-case", REBUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        run = RebuildFailed(f"not done within {REBUILD_TIMEOUT_S} s")
    if isinstance(run, RebuildFailed):
        return RebuildFigure(events, cases, None, None, None, run.reason)
    log(f"rebuilt in {run.seconds:.0f} s, {run.events_per_second:,.0f} events/s")
    return RebuildFigure(
        run.events,
        cases,
        round(run.seconds, 1),
        round(run.events_per_second),
        round(run.peak_rss_mib),
    )


def grow(
    url: str, data_dir: Path, source: list[str], sizes: ScaleSizes, started: float
) -> tuple[list[Step], RebuildFigure | None, str | None]:
    """Step 0 (the seed alone: the control), the steps up to `sizes.cases` cases, the rebuild
    after the first, and why growth stopped early (None if it did not)."""
    steps = [measure_step(url, data_dir, 0, (0, 0.0), sizes, started)]
    log(describe_step(steps[-1]))
    first_rebuild: RebuildFigure | None = None
    plan = copy_steps(sizes.cases, sizes.seed_cases, sizes.steps)
    for number, (first, last) in enumerate(plan, start=1):
        if number > 1:
            free = shutil.disk_usage(data_dir).free
            stop = stop_reason(steps[-1], last - first + 1, free, sizes, started, first_rebuild)
            if stop:
                log(f"growth stopped: {stop}")
                return steps, first_rebuild, stop
        log(f"step {number}/{len(plan)}: copies {first:,} to {last:,} of the seed")
        copied = copy_step(url, source, first, last)
        steps.append(measure_step(url, data_dir, number, copied, sizes, started))
        log(describe_step(steps[-1]))
        if first_rebuild is None:
            first_rebuild = rebuild_figure(url)
    return steps, first_rebuild, None


def stop_reason(
    last: Step,
    copies: int,
    free: int,
    sizes: ScaleSizes,
    started: float,
    first_rebuild: RebuildFigure | None,
) -> str | None:
    """Why the next step (`copies` copies of the seed) should not be made, if it should not."""
    events_per_copy = last.events / (last.cases / sizes.seed_cases)
    to_add = round(events_per_copy * copies)
    if not disk_allows(free, last.bytes_per_event_database, to_add):
        return (
            f"disk: {to_add:,} more events at {last.bytes_per_event_database:,.0f} bytes each"
            f" would leave less than {DISK_RESERVE_BYTES / 2**30:.0f} GiB free"
            f" ({free / 2**30:.1f} GiB free)"
        )
    rate = (first_rebuild.events_per_second if first_rebuild else None) or 10_000
    step_seconds = to_add / max(last.copy_events_per_second, 1) + 2 * sizes.append_seconds + 30
    elapsed = time.monotonic() - started
    if not time_allows(elapsed, sizes.budget_s, step_seconds, last.events + to_add, rate):
        return (
            f"time: after {elapsed / 60:.0f} min, a step of ~{step_seconds:.0f} s and a final"
            f" rebuild of {last.events + to_add:,} events at ~{rate:,.0f} events/s would not"
            f" fit the {sizes.budget_s / 60:.0f}-minute budget (or the rebuild's"
            f" {REBUILD_TIMEOUT_S / 60:.0f}-minute timeout)"
        )
    return None


def describe_step(step: Step) -> str:
    return (
        f"{step.cases:,} cases, {step.events:,} events: copy {step.copy_events_per_second:,}"
        f" events/s, store append {step.append_after_copy_events_per_second:,} events/s after"
        f" the copy, {step.append_events_per_second:,} after a {step.checkpoint_seconds} s"
        f" checkpoint (p99 {step.append_p99_ms} ms), events {step.events_total_mib:,.0f} MiB"
        f" ({step.bytes_per_event_events_table} B/event), database {step.database_mib:,.0f} MiB,"
        f" {step.free_disk_gib} GiB free, load {step.load_average}"
    )


def query_figures(url: str, token: str, sizes: ScaleSizes, results: Path) -> dict[str, Any]:
    """After the final rebuild: case_view topped up with make bench's bulk rows (open cases due
    around today), statistics topped up to the case count; then over HTTP the deadline queries
    and the head office's statistics for last year."""
    cases = disk_used(url)["cases"]
    asyncio.run(figures.fill_case_view(url, sizes.case_view_fill))
    fill_seconds = asyncio.run(figures.fill_statistics(url, cases))
    figures_measured: dict[str, Any] = {
        "case_view_rows": figures.case_count(url),
        "case_view_bulk_rows": sizes.case_view_fill,
        "statistics_fill_seconds": round(fill_seconds, 1),
    }
    with serving(url, results / "serve-scale.log.tmp") as base_url:
        log(f"deadline queries over {figures_measured['case_view_rows']:,} case_view rows")
        queries = figures.deadline_queries(base_url, token, sizes.latency_seconds)
        log("statistics, head office, last year")
        statistics = figures.statistics_query(base_url, token, sizes.latency_seconds)
    figures_measured["statistics_cases"] = figures.statistics_cases(url)
    figures_measured["deadline_queries"] = {
        name: latency_summary(throughput) for name, throughput in queries.items()
    }
    figures_measured["statistics_query"] = (
        None if statistics is None else latency_summary(statistics)
    )
    return figures_measured


def latency_summary(throughput: figures.Throughput) -> dict[str, float]:
    return {
        "requests": throughput.operations,
        "p50_ms": round(throughput.percentile(50), 2),
        "p99_ms": round(throughput.percentile(99), 2),
    }


def machine_description(data_dir: Path) -> dict[str, Any]:
    info = machine()
    log("machine probes: a Python loop of 10 million additions (best of 3), fsync")
    info["python_loop_s"] = round(probes.python_loop_seconds(), 3)
    info["slow_machine"] = probes.is_slow(info["python_loop_s"])
    info["fsync_folder"] = str(data_dir.parent)
    info["fsync_us"] = round(probes.fsync_microseconds(data_dir.parent), 1)
    info["free_disk_gib_at_start"] = round(shutil.disk_usage(data_dir.parent).free / 2**30, 1)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.scale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK.cases:,} cases, a check")
    parser.add_argument("--cases", type=int, help=f"cases to grow to (default {FULL.cases:,})")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--budget-minutes", type=float, help="the whole run's time budget")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.cases:
        sizes = ScaleSizes(**(asdict(sizes) | {"cases": args.cases}))
    if args.budget_minutes:
        sizes = ScaleSizes(**(asdict(sizes) | {"budget_s": args.budget_minutes * 60}))
    started = time.monotonic()
    info = machine_description(SCALE_DATA_DIR)
    args.results.mkdir(parents=True, exist_ok=True)
    with scale_server() as (server, data_dir):
        url = fresh_database(server, SCALE_DATABASE)
        info["postgresql"] = server_settings(url)
        token, source = seed(url, sizes)
        steps, first_rebuild, stopped = grow(url, data_dir, source, sizes, started)
        final_rebuild = rebuild_figure(url)
        queries = query_figures(url, token, sizes, args.results)
        queries["disk_at_end"] = disk_at_end(url, data_dir)
        drop_database(server, SCALE_DATABASE)
    info["bench_seconds"] = round(time.monotonic() - started)
    info["sizes"] = f"scale-{sizes.name} (target {sizes.cases:,} cases)"
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    document = {
        "sizes": asdict(sizes),
        "stopped_early": stopped,
        "steps": [asdict(step) for step in steps],
        "rebuild_first_step": None if first_rebuild is None else asdict(first_rebuild),
        "rebuild_final": asdict(final_rebuild),
        **queries,
    }
    rows = summary_rows(steps, first_rebuild, final_rebuild, queries)
    stem = args.results / f"scale-{sizes.name}"
    write_json(stem.with_suffix(".json"), info, rows, document)
    notes = [stopped_note(stopped), *rebuild_failures(first_rebuild, final_rebuild)]
    markdown = markdown_report(info, rows, steps, notes)
    stem.with_suffix(".md").write_text(markdown)
    print(markdown)
    log(f"done in {info['bench_seconds']} s; wrote {stem}.json and .md")
    return 0


def disk_at_end(url: str, data_dir: Path) -> dict[str, Any]:
    """The sizes once the projections are rebuilt (and topped up), in MiB, with the WAL."""
    used = disk_used(url)
    sizes = {key: mib(value) for key, value in used.items() if key not in ("events", "cases")}
    wal = wal_bytes(data_dir)
    return sizes | {
        "events": used["events"],
        "cases": used["cases"],
        "wal": None if wal is None else mib(wal),
        "bytes_per_event_database": round(used["database"] / max(used["events"], 1)),
    }


def drop_database(server_url: str, name: str) -> None:
    async def drop() -> None:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(drop())


def summary_rows(
    steps: list[Step],
    first_rebuild: RebuildFigure | None,
    final_rebuild: RebuildFigure,
    queries: dict[str, Any],
) -> list:
    first, last = steps[0], steps[-1]
    rows = [
        info_row(
            f"store append at rest, {first.events:,} events",
            first.append_events_per_second,
            "events/s",
            f"p99 {first.append_p99_ms} ms",
        ),
        info_row(
            f"store append at rest, {last.events:,} events",
            last.append_events_per_second,
            "events/s",
            f"p99 {last.append_p99_ms} ms; every step: "
            + ", ".join(f"{step.append_events_per_second:,}" for step in steps),
        ),
        info_row(
            f"store append straight after a copy step, {last.events:,} events",
            last.append_after_copy_events_per_second,
            "events/s",
            f"p99 {last.append_after_copy_p99_ms} ms; every step: "
            + ", ".join(f"{step.append_after_copy_events_per_second:,}" for step in steps),
        ),
        info_row(
            "disk, events table (heap, TOAST, indexes) per million events",
            last.bytes_per_event_events_table,
            "MB",
            f"{last.events_total_mib:,.0f} MiB for {last.events:,} events",
        ),
        info_row(
            "disk, whole database per million events",
            last.bytes_per_event_database,
            "MB",
            f"{last.database_mib:,.0f} MiB (case_keys {last.case_keys_mib:,.0f} MiB)"
            " before the final rebuild's projections",
        ),
    ]
    for label, rebuild in (("first step", first_rebuild), ("final", final_rebuild)):
        if rebuild is None:
            continue
        rows.append(
            info_row(
                f"full rebuild, {label}, {rebuild.events:,} events",
                rebuild.events_per_second,
                "events/s",
                rebuild.failed or f"{rebuild.seconds} s, peak RSS {rebuild.peak_rss_mib} MiB",
            )
        )
    for name, latency in queries["deadline_queries"].items():
        rows.append(
            info_row(
                f"deadline query {name}, {queries['case_view_rows']:,} cases, p99",
                latency["p99_ms"],
                "ms",
                f"p50 {latency['p50_ms']} ms over {latency['requests']} requests",
            )
        )
    statistics = queries["statistics_query"]
    rows.append(
        info_row(
            f"statistics, head office, a year, {queries['statistics_cases']:,} cases, p99",
            None if statistics is None else statistics["p99_ms"],
            "ms",
            "no statistics route" if statistics is None else f"p50 {statistics['p50_ms']} ms",
        )
    )
    return rows


def stopped_note(stopped: str | None) -> str:
    return f"Growth stopped early: {stopped}" if stopped else "Growth reached the target."


def rebuild_failures(
    first_rebuild: RebuildFigure | None, final_rebuild: RebuildFigure
) -> list[str]:
    """A line for each rebuild that failed: the figures after it read what it left behind."""
    rebuilds = {"first step's": first_rebuild, "final": final_rebuild}
    return [
        f"The {label} rebuild of {rebuild.events:,} events failed ({rebuild.failed}): the"
        " figures after it ran over the projections it left."
        for label, rebuild in rebuilds.items()
        if rebuild is not None and rebuild.failed
    ]


def markdown_report(info: dict[str, Any], rows: list, steps: list[Step], notes: list[str]) -> str:
    lines = [
        f"# make bench-scale ({info['sizes']}), {info['measured_at']}",
        "",
        *(f"{line}  " for line in probes.header_lines(info)),
        f"load average at end {', '.join(str(x) for x in info['load_average_at_end'])}",
        "",
        *(f"{note}  " for note in notes),
        "",
        "| step | cases | events | elapsed s | copy events/s | append after copy events/s"
        " (p99 ms) | checkpoint s | append at rest events/s (p99 ms) | events MiB |"
        " B/event (events) | database MiB | B/event (database) | free GiB | load |",
        "|" + "---|" * 14,
    ]
    lines += [
        f"| {s.number} | {s.cases:,} | {s.events:,} | {s.elapsed_s:,.0f} |"
        f" {s.copy_events_per_second:,} | {s.append_after_copy_events_per_second:,}"
        f" ({s.append_after_copy_p99_ms}) | {s.checkpoint_seconds} |"
        f" {s.append_events_per_second:,} ({s.append_p99_ms}) |"
        f" {s.events_total_mib:,.0f} | {s.bytes_per_event_events_table:,.0f} |"
        f" {s.database_mib:,.0f} | {s.bytes_per_event_database:,.0f} | {s.free_disk_gib} |"
        f" {s.load_average[0]} |"
        for s in steps
    ]
    lines += ["", table(rows), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
