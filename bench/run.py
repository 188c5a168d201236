"""`make bench`: every figure of TARGETS.md against baselines measured in the same run.

    python -m bench.run [--quick] [--results DIR]

Sets up its own data on the embedded PostgreSQL under `.pgdata-bench/` (or on `DATABASE_URL`'s
server): a fresh database `complaintcore_bench`, migrated. Prints one table, writes it as JSON
and a PNG chart under `bench/results/`, and exits 0 whatever the figures. `--quick` shrinks
every size for a run of a minute or two; the default uses TARGETS.md's sizes.

Every ratio against a baseline is taken from interleaved rounds (TARGETS.md, "Headroom";
bench/rounds.py): baseline, figure, baseline, figure, ... `Sizes.rounds` times, each a short
window, reported as the median of the per-round ratios with their spread. The header gives the
machine's Python loop and fsync probes (bench/probes.py).

The cost of encryption on the rebuild is a same-run pair (bench/encryption_cost.py): twin
databases of the same histories, sealed and plaintext, rebuilt in interleaved rounds.
"""

import argparse
import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import baselines, encryption_cost, figures, histories, probes, webhook_rows
from bench.database import (
    BENCH_DATA_DIR,
    BENCH_DATABASE,
    bench_server,
    fresh_database,
    server_settings,
)
from bench.measure import Throughput, merged
from bench.rebuild_rows import RebuildRun, rebuild_available, rebuild_in_child
from bench.report import (
    Row,
    ceiling_row,
    info_row,
    machine,
    ratio_row,
    table,
    unless_failed,
    write_chart,
    write_json,
)
from bench.rounds import RoundRatio, median, run_rounds
from bench.service import serving

RESULTS = Path(__file__).resolve().parent / "results"
TIME_BUDGET_S = 600  # TARGETS.md: the whole run within 10 minutes
# topping statistics up to 1M cases (~40 s), their query, the table, JSON, chart, a margin
FINISHING_S = 100


@dataclass(frozen=True)
class Sizes:
    name: str
    seconds: float  # each timed throughput run not in rounds (the load generator's ceiling)
    latency_seconds: float  # each one-at-a-time latency run
    copy_rows: int
    import_cases: int  # about 5.2 events a case
    open_cases: int  # cases the HTTP commands act on
    query_cases: int
    rebuild_small_events: int
    rebuild_large_events: int
    sweep_cases: int
    webhook_alerts: int  # alerts written at once for the deliveries/s figure (x 4 subscriptions)
    rounds: int = 5  # interleaved rounds of each ratio (baseline, figure, baseline, figure, ...)
    round_seconds: float = 2.0  # each timed window of a round
    rebuild_rounds: int = 3  # rounds of raw read and whole rebuild (the longest figure)
    read_rows_at_least: int = 100_000  # a round's raw read: a share of the COPY rows, or this
    encryption_pair_copies: int = 4  # copies of the imported cases in each of the twin databases


FULL = Sizes(
    "full", 10, 4, 1_000_000, 10_000, 3_200, 1_000_000, 100_000, 1_000_000, 10_000, 1_000, 5, 2.0, 3
)
QUICK = Sizes(
    "quick",
    3,
    1.5,
    100_000,
    2_000,
    640,
    100_000,
    20_000,
    100_000,
    2_000,
    250,
    5,
    1.0,
    3,
    encryption_pair_copies=1,
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a fast run")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write JSON and PNG")
    parser.add_argument("--workers", type=int, default=1, help="`complaintcore serve --workers`")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    machine_info = machine()
    log("machine probes: a Python loop of 10 million additions (best of 3), fsync")
    machine_info["python_loop_s"] = round(probes.python_loop_seconds(), 3)
    machine_info["slow_machine"] = probes.is_slow(machine_info["python_loop_s"])
    machine_info["slow_machine_from_loop_s"] = probes.SLOW_LOOP_S
    with bench_server() as server:
        # the filesystem of the embedded server's data folder (not DATABASE_URL's server's)
        machine_info["fsync_folder"] = str(BENCH_DATA_DIR.parent)
        machine_info["fsync_us"] = round(probes.fsync_microseconds(BENCH_DATA_DIR.parent), 1)
        log(f"loop {machine_info['python_loop_s']:.2f} s, fsync {machine_info['fsync_us']:.0f} µs")
        url = fresh_database(server)
        # The store append figure writes bench events that are no complaint's: a database apart.
        store_url = fresh_database(server, f"{BENCH_DATABASE}_store")
        # The webhook figures want an alert runner with nothing else to fold: a database apart.
        hooks_url = fresh_database(server, f"{BENCH_DATABASE}_webhooks")
        machine_info["postgresql"] = server_settings(url)
        measured = measure(url, store_url, sizes, args.workers, args.results)
        if rebuild_available():
            measured["encryption_pair"] = encryption_pair(server, url, sizes)
        log("alerts to webhooks: latency, then deliveries/s to a loopback receiver")
        asyncio.run(figures.seed_reference_data(hooks_url))
        args.results.mkdir(parents=True, exist_ok=True)
        measured["webhooks"] = webhook_rows.measure(
            hooks_url, args.results / "serve.log.tmp", sizes.latency_seconds, sizes.webhook_alerts
        )
    machine_info["bench_seconds"] = round(time.monotonic() - started)
    machine_info["sizes"] = sizes.name
    machine_info["rounds"] = sizes.rounds
    machine_info["round_seconds"] = sizes.round_seconds
    machine_info["rebuild_rounds"] = sizes.rebuild_rounds
    rows = build_rows(measured)
    print(table(rows, machine_info))
    args.results.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{sizes.name}"
    write_json(args.results / f"{stem}.json", machine_info, rows, {"server_workers": args.workers})
    write_chart(
        args.results / f"{stem}.png",
        throughput_bars(measured),
        latency_series(measured),
        f"complaintcore make bench ({sizes.name}) on {machine_info['cores']} cores,"
        f" {machine_info['cpu']}, PostgreSQL {machine_info['postgresql'].get('server_version')}",
    )
    log(f"done in {machine_info['bench_seconds']} s; wrote {args.results / stem}.json and .png")
    return 0


def measure(url: str, store_url: str, sizes: Sizes, workers: int, results: Path) -> dict[str, Any]:
    started = time.monotonic()
    measured: dict[str, Any] = {}
    window, rounds = sizes.round_seconds, sizes.rounds
    log(
        f"raw append, store append, peer (eventsourcing): {rounds} interleaved rounds"
        f" of {window:g} s each"
    )
    measured["appends"] = run_rounds(
        rounds,
        {
            "raw_append": lambda _: asyncio.run(baselines.raw_append(url, window)),
            "store_append": lambda _: asyncio.run(figures.store_append(store_url, window)),
            "peer": lambda _: baselines.peer(url, window),
        },
    )
    token = asyncio.run(figures.seed_reference_data(url))
    log(
        f"raw COPY of {sizes.copy_rows:,} rows and bulk import of {sizes.import_cases:,} cases:"
        f" {rounds} interleaved rounds, a share of each a round"
    )
    lines = list(histories.case_lines(sizes.import_cases))
    case_shares = shares(len(lines), rounds)
    row_shares = shares(sizes.copy_rows, rounds)
    measured["bulk"] = run_rounds(
        rounds,
        {
            "raw_copy": lambda r: asyncio.run(
                baselines.raw_copy(url, row_shares[r][1], row_shares[r][0])
            ),
            "import": lambda r: asyncio.run(
                figures.bulk_import(url, lines[case_shares[r][0] : sum(case_shares[r])])
            )[0],
        },
    )
    extra = [
        histories.long_case_line(figures.LONG_CASE),
        *figures.open_case_lines(sizes.open_cases),
    ]
    asyncio.run(figures.bulk_import(url, extra))
    open_ids = histories.case_ids(sizes.open_cases, figures.OPEN_PREFIX)
    log(f"retention sweep of {sizes.sweep_cases} cases closed years ago")
    measured["sweep"] = asyncio.run(figures.retention_sweep(url, sizes.sweep_cases))
    if rebuild_available():
        measured["rebuild_small"] = rebuild_to(
            url, sizes.rebuild_small_events, sizes, "small", measured
        )
    results.mkdir(parents=True, exist_ok=True)
    with serving(url, results / "serve.log.tmp", workers) as base_url:
        # commands are measured beside runners that keep up with them, as in service: not while
        # they fold the histories the bench wrote before the server started
        measured["runners_start_catch_up_s"] = figures.runners_caught_up(url)
        log(f"runners caught up with the feed in {measured['runners_start_catch_up_s']:.1f} s")
        log("load generator ceiling on /healthz")
        measured["ceiling"], _ = figures.healthz_ceiling(base_url, sizes.seconds)
        log(f"raw append and commands over HTTP, 32 clients: {rounds} interleaved rounds")

        def raw_append_at_rest(_: int) -> Throughput:
            # the server's runners fold the last round's commands after it: the baseline is
            # measured once they are done, not beside them (found by a review pass)
            figures.runners_caught_up(url)
            return asyncio.run(baselines.raw_append(url, window))

        commands = run_rounds(
            rounds,
            {
                "raw_append": raw_append_at_rest,
                "commands": lambda _: figures.http_commands(base_url, token, open_ids, window),
            },
        )
        measured["commands"] = {
            "raw_append": commands["raw_append"],
            "commands": [throughput for throughput, _ in commands["commands"]],
        }
        measured["command_statuses"] = sum_statuses(
            [statuses for _, statuses in commands["commands"]]
        )
        # The server's runners fold the burst's events after it: the replays are measured on
        # the server at rest, as a regulator's would usually find it.
        measured["runners_burst_catch_up_s"] = figures.runners_caught_up(url)
        log(f"runners caught up in {measured['runners_burst_catch_up_s']:.1f} s")
        log("replay of a 30-event case")
        measured["replay"] = figures.replay(base_url, token, sizes.latency_seconds)
        log("reveal of one case's personal data")
        measured["reveal"] = figures.reveal(base_url, token, open_ids, sizes.latency_seconds)
        log(f"{sizes.query_cases} cases into case_view, then the deadline queries")
        asyncio.run(figures.fill_case_view(url, sizes.query_cases))
        measured["query_cases"] = figures.case_count(url)
        measured["queries"] = figures.deadline_queries(base_url, token, sizes.latency_seconds)
    reads = [
        read_window(r, sizes.rebuild_rounds, sizes.copy_rows, sizes.read_rows_at_least)
        for r in range(sizes.rebuild_rounds)
    ]

    def raw_read(r: int) -> Throughput:
        asyncio.run(baselines.settle(url))
        return asyncio.run(baselines.raw_read(url, *reads[r]))

    if rebuild_available():
        events = large_rebuild_size(sizes, measured, started)
        if events < sizes.rebuild_large_events:
            measured["rebuild_large_cut"] = (
                f"cut from {sizes.rebuild_large_events:,} events to stay within"
                f" {TIME_BUDGET_S // 60} minutes"
            )
            log(f"large rebuild {measured['rebuild_large_cut']}")
        grow_to(url, events, sizes, measured)
        asyncio.run(baselines.settle(url, vacuum=("events", "bench_raw_copy")))
        log(
            f"raw read and rebuild from {figures.event_count(url):,} events:"
            f" {sizes.rebuild_rounds} rounds"
        )
        failed: list[RebuildFailed] = []

        def rebuild(_: int) -> RebuildRun | RebuildFailed:
            if failed:  # once failed, the next would too: not tried again
                return failed[0]
            asyncio.run(baselines.settle(url))
            run = rebuild_once(url, "large")
            if isinstance(run, RebuildFailed):
                failed.append(run)
            return run

        measured["rebuilds"] = run_rounds(
            sizes.rebuild_rounds, {"raw_read": raw_read, "rebuild": rebuild}
        )
        log(f"statistics facts and buckets topped up to {sizes.query_cases:,} cases")
        measured["statistics_fill_seconds"] = asyncio.run(
            figures.fill_statistics(url, sizes.query_cases)
        )
        with serving(url, results / "serve.log.tmp", workers) as base_url:
            log("statistics query over the rebuilt and topped-up statistics projection")
            measured["statistics"] = figures.statistics_query(
                base_url, token, sizes.latency_seconds
            )
            measured["statistics_cases"] = figures.statistics_cases(url)
    else:
        log(f"raw read: {sizes.rebuild_rounds} rounds (no rebuild to interleave)")
        measured["rebuilds"] = {
            "raw_read": [raw_read(r) for r in range(sizes.rebuild_rounds)],
            "rebuild": [],
        }
    return measured


def encryption_pair(server_url: str, source_url: str, sizes: Sizes) -> dict[str, Any]:
    """Rebuilds of the same histories sealed and plaintext, interleaved (encryption_cost.py)."""
    source = histories.case_ids(sizes.import_cases)
    copies = sizes.encryption_pair_copies
    log(f"the cost of encryption: {copies} copies of the imported cases, sealed and plaintext")
    twins = encryption_cost.twin_databases(server_url, source_url, source, copies)

    def rebuild(url: str) -> RebuildRun | RebuildFailed:
        asyncio.run(baselines.settle(url))
        return rebuild_once(url, "encryption pair")

    pair: dict[str, Any] = run_rounds(
        sizes.rounds,  # short rebuilds: as many rounds as the other ratios
        {
            "plaintext": lambda _: rebuild(twins.plain_url),
            "sealed": lambda _: rebuild(twins.sealed_url),
        },
    )
    pair["disagree"] = encryption_cost.twins_disagree(twins)
    return pair


def shares(total: int, rounds: int) -> list[tuple[int, int]]:
    """`total` items cut into `rounds` consecutive shares as even as can be: (first, count)."""
    cuts = [total * r // rounds for r in range(rounds + 1)]
    return [(cuts[r], cuts[r + 1] - cuts[r]) for r in range(rounds)]


def read_window(number: int, rounds: int, total: int, at_least: int) -> tuple[int, int]:
    """Round `number`'s raw read of the `total` COPY rows: (rows skipped, rows read). A share
    of the rows, at least `at_least` of them (or all), the windows spread evenly from the
    first row to the last so that no two rounds read the same rows where there are enough."""
    rows = min(total, max(total // rounds, at_least))
    skipped = (total - rows) * number // max(rounds - 1, 1)
    return skipped, rows


def sum_statuses(statuses: list[dict[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for counts in statuses:
        for code, count in counts.items():
            total[code] = total.get(code, 0) + count
    return total


def large_rebuild_size(sizes: Sizes, measured: dict[str, Any], started: float) -> int:
    """TARGETS.md's size, or fewer events if the paces seen so far (copying the histories in,
    the small rebuild) say it would not finish within the time budget."""
    small = measured.get("rebuild_small")
    if not isinstance(small, RebuildRun) or small.events_per_second <= 0:
        return sizes.rebuild_large_events
    copy_pace = measured.get("copy_events_per_second", small.events_per_second)
    pair = encryption_pair_seconds(sizes, measured.get("imported_events", 0), copy_pace, small)
    left = TIME_BUDGET_S - FINISHING_S - pair - (time.monotonic() - started)
    seconds_per_event = 1 / copy_pace + sizes.rebuild_rounds / small.events_per_second
    affordable = int(left / seconds_per_event)
    return max(2 * small.events, min(sizes.rebuild_large_events, affordable))


def encryption_pair_seconds(
    sizes: Sizes, imported_events: int, copy_pace: float, small: RebuildRun
) -> float:
    """What the encryption pair, run after the large rebuild, will take at the paces seen so
    far: the imported histories copied into both twins, then its rounds of two rebuilds each."""
    events = sizes.encryption_pair_copies * imported_events
    return 2 * events / copy_pace + 2 * sizes.rounds * events / small.events_per_second


@dataclass(frozen=True)
class RebuildFailed:
    reason: str


def rebuild_to(
    url: str, events: int, sizes: Sizes, label: str, measured: dict[str, Any]
) -> RebuildRun | RebuildFailed:
    """Copy the imported histories until the store holds about `events` events, then rebuild
    every projection in a child process."""
    grow_to(url, events, sizes, measured)
    return rebuild_once(url, label)


def grow_to(url: str, events: int, sizes: Sizes, measured: dict[str, Any]) -> None:
    """Copy the imported histories until the store holds about `events` events."""
    stored = figures.event_count(url)
    source = histories.case_ids(sizes.import_cases)
    measured["imported_events"] = figures.event_count(url, source)
    copies_done = measured.get("copies", 0)
    copies_needed = max(0, round((events - stored) / measured["imported_events"]))
    if copies_needed:
        log(f"copying the imported histories {copies_needed} times ({events:,} events)")
        copying = time.monotonic()
        asyncio.run(
            figures.copy_histories(url, source, copies_done + 1, copies_done + copies_needed)
        )
        measured["copies"] = copies_done + copies_needed
        copied = figures.event_count(url) - stored
        measured["copy_events_per_second"] = copied / max(time.monotonic() - copying, 1e-3)


def rebuild_once(url: str, label: str, timeout_s: float = 900) -> RebuildRun | RebuildFailed:
    """Rebuild every projection from all the events in a child process."""
    log(f"rebuild from {figures.event_count(url):,} events")
    try:
        return rebuild_in_child(url, timeout_s)
    except subprocess.CalledProcessError as failure:
        last_line = (failure.stderr or "").strip().splitlines()[-1:] or ["no message"]
        log(f"the {label} rebuild failed: {last_line[0]}")
        return RebuildFailed(last_line[0])


def per_second(runs: list[Throughput]) -> list[float]:
    return [run.per_second for run in runs]


def build_rows(measured: dict[str, Any]) -> list[Row]:
    appends, bulk, rounds_of_commands = (
        measured["appends"],
        measured["bulk"],
        measured["commands"],
    )
    raw_append = per_second(appends["raw_append"])
    store = per_second(appends["store_append"])
    peer = per_second(appends["peer"])
    raw_copy = per_second(bulk["raw_copy"])
    raw_read = per_second(measured["rebuilds"]["raw_read"])
    command_rates = per_second(rounds_of_commands["commands"])
    raw_append_serving = per_second(rounds_of_commands["raw_append"])
    cases = f"{measured['query_cases']:,}"
    commands = merged(rounds_of_commands["commands"])  # every round's latencies
    ceiling: Throughput = measured["ceiling"]
    rounds = len(raw_append)

    def medians(values: list[float]) -> str:
        return f"median of {len(values)} rounds: " + ", ".join(f"{v:,.0f}" for v in values)

    rows = [
        info_row(
            "baseline: raw append (16 tasks, INSERT per event)",
            median(raw_append),
            "events/s",
            f"{medians(raw_append)}; beside the commands, the server up:"
            f" {median(raw_append_serving):,.0f}",
        ),
        info_row("baseline: raw COPY", median(raw_copy), "rows/s", medians(raw_copy)),
        info_row(
            "baseline: raw read (keyset, 10,000 a batch)",
            median(raw_read),
            "rows/s",
            medians(raw_read),
        ),
        info_row(
            "baseline: peer, eventsourcing (16 threads)", median(peer), "events/s", medians(peer)
        ),
        ratio_row(
            "store append, 16 concurrent single-event appends",
            RoundRatio.of(store, raw_append),
            "events/s",
            "raw append",
            1.0,
        ),
        ratio_row(
            "store append vs the peer",
            RoundRatio.of(store, peer),
            "events/s",
            "peer",
            5,
            "each round's peer measured after its store append",
        ),
        unless_failed(
            ratio_row(
                "command over HTTP, 32 clients",
                RoundRatio.of(command_rates, raw_append_serving),
                "commands/s",
                "raw append",
                0.3,
                "raw append measured beside the commands, the server up, its runners caught up"
                " with the feed before each round",
            ),
            [commands],
        ),
        info_row(
            "command over HTTP p50",
            commands.percentile(50),
            "ms",
            _statuses(measured["command_statuses"]),
        ),
        unless_failed(
            ceiling_row(
                "command over HTTP p99",
                commands.percentile(99),
                "ms",
                50,
                f"over the {rounds} rounds' {commands.operations:,} commands",
            ),
            [commands],
        ),
        Row(
            "load generator ceiling (/healthz, 32 clients)",
            ceiling.per_second,
            "requests/s",
            median(command_rates),
            "commands/s",
            ceiling.per_second / median(command_rates) if median(command_rates) else None,
            "well above commands/s",
            ceiling.per_second > 1.5 * median(command_rates),
            "against the median of the rounds' commands/s",
            of_targets=False,
        ),
        ratio_row(
            "bulk import through the store",
            RoundRatio.of(per_second(bulk["import"]), raw_copy),
            "events/s",
            "raw COPY",
            0.3,
            f"each round 1/{rounds} of the rows and of the cases",
        ),
    ]
    rows += rebuild_rows(measured, raw_read)
    rows.append(encryption_cost_row(measured.get("encryption_pair")))
    sweep: Throughput = measured["sweep"]
    rows.append(
        Row(
            "retention sweep (cases erased)",
            sweep.per_second,
            "cases/s",
            target=">= 1,000 cases/s",
            met=sweep.per_second >= 1_000,
            note=f"{sweep.operations:,} cases in {sweep.seconds:.1f} s",
        )
    )
    replay: dict[str, Throughput] = measured["replay"]
    worst = max(replay, key=lambda name: replay[name].percentile(99))
    replay_row = unless_failed(
        ceiling_row(
            "replay of one 30-event case p99 (worst of 3 routes)",
            replay[worst].percentile(99),
            "ms",
            10,
            "p50/p99 ms: "
            + ", ".join(
                f"{name} {t.percentile(50):.1f}/{t.percentile(99):.1f}"
                for name, t in replay.items()
            )
            + "; measured once the runners caught up"
            + f" ({measured['runners_burst_catch_up_s']:.1f} s)",
        ),
        list(replay.values()),
    )
    rows.append(replay_row)
    reveal: Throughput = measured["reveal"]
    rows.append(
        unless_failed(
            ceiling_row(
                "reveal of one case's personal data p99",
                reveal.percentile(99),
                "ms",
                10,
                f"p50 {reveal.percentile(50):.1f} ms; each call logged before it answers",
            ),
            [reveal],
        )
    )
    for name, throughput in measured["queries"].items():
        rows.append(
            unless_failed(
                ceiling_row(
                    f"deadline query {name}, {cases} cases, p99",
                    throughput.percentile(99),
                    "ms",
                    20,
                    f"p50 {throughput.percentile(50):.1f} ms",
                ),
                [throughput],
            )
        )
    rows += webhook_figure_rows(measured["webhooks"])
    statistics = measured.get("statistics")
    figure = f"statistics, head office, a year, {measured.get('statistics_cases', 0):,} cases, p99"
    if statistics is None:
        note = "not measured: no statistics route or projection"
        rows.append(Row(figure, None, "ms", target="<= 100 ms", note=note))
    else:
        p99 = ceiling_row(figure, statistics.percentile(99), "ms", 100)
        rows.append(unless_failed(p99, [statistics]))
    return rows


def webhook_figure_rows(hooks: webhook_rows.WebhookFigures) -> list[Row]:
    """TARGETS.md: alert from commit to webhook delivery, local receiver: p99 <= 2 s; >= 500
    deliveries/s sustained."""
    latency, deliveries = hooks.latency, hooks.deliveries
    waited = webhook_rows.ARRIVAL_TIMEOUT_S
    lost = f"; {hooks.lost} not arrived within {waited} s" * bool(hooks.lost)
    expected = hooks.expected
    # an alert that never arrived is later than any that did: counted at the time waited for it
    # (a lower bound), so that losing alerts cannot improve the percentiles
    latencies = Throughput(
        latency.operations + hooks.lost,
        latency.seconds,
        [*latency.latencies_ms, *[waited * 1000.0] * hooks.lost],
    )
    return [
        ceiling_row(
            "alert latency, command commit to webhook arrival (loopback receiver), p99",
            latencies.percentile(99) / 1000,
            "s",
            2,
            f"p50 {latencies.percentile(50) / 1000:.2f} s over {latencies.operations} complaints"
            f" one at a time (~{webhook_rows.LATENCY_RATE}/s); default polls{lost}",
        ),
        Row(
            "webhook deliveries to a loopback receiver",
            deliveries.per_second,
            "deliveries/s",
            target=">= 500 deliveries/s",
            met=deliveries.per_second >= 500 and not hooks.short,
            note=f"{deliveries.operations:,} of {expected:,} deliveries in"
            f" {deliveries.seconds:.1f} s ({hooks.subscriptions} subscriptions, alerts"
            " written at once; commit to last arrival)",
        ),
    ]


def rebuild_rows(measured: dict[str, Any], raw_read: list[float]) -> list[Row]:
    small = measured.get("rebuild_small")
    runs = measured["rebuilds"]["rebuild"]
    failed = [run for run in [small, *runs] if isinstance(run, RebuildFailed)]
    if not isinstance(small, RebuildRun) or not runs or failed:
        note = (
            f"rebuild failed: {failed[0].reason}"
            if failed
            else "not measured: complaintcore.projections.rebuild is not available"
        )
        return [
            Row(
                "full projection rebuild",
                None,
                "events/s",
                target=">= 0.25 x raw read",
                note=note,
            ),
            Row("rebuild peak RSS, large vs small", None, "x", target="<= 1.5 x", note=note),
            Row("rebuild time, large vs small", None, "x", target="<= 11 x", note=note),
        ]
    events = runs[0].events
    seconds = median([run.seconds for run in runs])
    peak_rss_mib = max(run.peak_rss_mib for run in runs)
    rss_ratio = peak_rss_mib / small.peak_rss_mib
    time_ratio = seconds / small.seconds
    cut = measured.get("rebuild_large_cut", "")
    # TARGETS.md compares 1,000,000 with 100,000 events: a rebuild cut short holds less to
    # grow with, so its memory says nothing of that row (its time is judged against the sizes)
    rss_met = None if cut else rss_ratio <= 1.5
    rss_note = f"not judged: the large rebuild was {cut}; " * bool(cut)
    return [
        ratio_row(
            f"full projection rebuild (case state + statistics), {events:,} events",
            RoundRatio.of([run.events_per_second for run in runs], raw_read),
            "events/s",
            "raw read",
            0.25,
            "each round a raw read of a share of the COPY rows, then a whole rebuild"
            + f"; {cut}" * bool(cut),
        ),
        Row(
            f"rebuild peak RSS, {events:,} vs {small.events:,} events",
            rss_ratio,
            "x",
            target="<= 1.5 x",
            met=rss_met,
            note=f"{rss_note}{peak_rss_mib:.0f} MiB (the highest of {len(runs)} rebuilds)"
            f" vs {small.peak_rss_mib:.0f} MiB",
        ),
        Row(
            f"rebuild time, {events:,} vs {small.events:,} events",
            time_ratio,
            "x",
            target=f"<= {11 * events / small.events / 10:.1f} x (linear + 10%)",
            met=time_ratio <= 1.1 * events / small.events,
            note=f"{seconds:.1f} s (the median of {len(runs)} rebuilds) vs {small.seconds:.1f} s",
        ),
    ]


def encryption_cost_row(pair: dict[str, Any] | None) -> Row:
    """TARGETS.md: encryption costs <= 10 % of any figure; the rebuild's, from a same-run pair
    whose twins' rebuilds agree."""
    figure = "rebuild, personal data sealed vs the same histories stored plaintext"
    not_compared = _pair_not_compared(pair)
    if pair is None or not_compared:
        return Row(figure, None, "events/s", target=">= 0.9 x plaintext", note=not_compared)
    sealed = [run.events_per_second for run in pair["sealed"]]
    plaintext = [run.events_per_second for run in pair["plaintext"]]
    return ratio_row(
        figure,
        RoundRatio.of(sealed, plaintext),
        "events/s",
        "plaintext",
        0.9,
        f"the cost of encryption: twin databases of {pair['sealed'][0].events:,} events each,"
        " each round the plaintext rebuild then the sealed one",
    )


def _pair_not_compared(pair: dict[str, Any] | None) -> str:
    """Why the encryption pair gives no ratio ("": it does)."""
    if pair is None:
        return "not measured: no rebuild"
    failed = [
        run for run in (*pair["plaintext"], *pair["sealed"]) if isinstance(run, RebuildFailed)
    ]
    if failed:
        return f"rebuild failed: {failed[0].reason}"
    if pair["disagree"]:
        return f"not compared: the twins' rebuilt {pair['disagree']} differ"
    return ""


def _statuses(statuses: dict[str, int]) -> str:
    return "statuses " + ", ".join(f"{code}: {count}" for code, count in sorted(statuses.items()))


def throughput_bars(measured: dict[str, Any]) -> dict[str, float]:
    """Each figure's median over its rounds."""
    appends, bulk = measured["appends"], measured["bulk"]
    bars = {
        "baseline: raw append": median(per_second(appends["raw_append"])),
        "store append": median(per_second(appends["store_append"])),
        "commands over HTTP": median(per_second(measured["commands"]["commands"])),
        "baseline: peer (eventsourcing)": median(per_second(appends["peer"])),
        "baseline: raw COPY": median(per_second(bulk["raw_copy"])),
        "bulk import": median(per_second(bulk["import"])),
        "baseline: raw read": median(per_second(measured["rebuilds"]["raw_read"])),
        "webhook deliveries": measured["webhooks"].deliveries.per_second,
    }
    runs = measured["rebuilds"]["rebuild"]
    if runs and all(isinstance(run, RebuildRun) for run in runs):
        bars["full rebuild"] = median([run.events_per_second for run in runs])
    return bars


def latency_series(measured: dict[str, Any]) -> dict[str, list[float]]:
    """Every round's latencies of a figure together."""
    appends = measured["appends"]
    series = {
        "raw append (16 tasks)": merged(appends["raw_append"]).latencies_ms,
        "store append (16 tasks)": merged(appends["store_append"]).latencies_ms,
        "peer append (16 threads)": merged(appends["peer"]).latencies_ms,
        "command over HTTP (32 clients)": merged(measured["commands"]["commands"]).latencies_ms,
    }
    for name, throughput in measured["replay"].items():
        series[f"replay {name}"] = throughput.latencies_ms
    for name, throughput in measured["queries"].items():
        series[f"query {name}"] = throughput.latencies_ms
    series["alert to webhook arrival"] = measured["webhooks"].latency.latencies_ms
    if measured.get("statistics") is not None:
        series["statistics, head office, a year"] = measured["statistics"].latencies_ms
    return series


if __name__ == "__main__":
    sys.exit(main())
