"""`make bench`: every figure of TARGETS.md against baselines measured in the same run.

    python -m bench.run [--quick] [--results DIR]

Sets up its own data on the embedded PostgreSQL under `.pgdata-bench/` (or on `DATABASE_URL`'s
server): a fresh database `complaintcore_bench`, migrated. Prints one table, writes it as JSON
and a PNG chart under `bench/results/`, and exits 0 whatever the figures. `--quick` shrinks
every size for a run of a minute or two; the default uses TARGETS.md's sizes.
"""

import argparse
import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import baselines, figures, histories, webhook_rows
from bench.database import BENCH_DATABASE, bench_server, fresh_database, server_settings
from bench.measure import Throughput
from bench.rebuild_rows import RebuildRun, rebuild_available, rebuild_in_child
from bench.report import (
    Row,
    ceiling_row,
    info_row,
    machine,
    ratio_row,
    table,
    write_chart,
    write_json,
)
from bench.service import serving

RESULTS = Path(__file__).resolve().parent / "results"
TIME_BUDGET_S = 600  # TARGETS.md: the whole run within 10 minutes
# topping statistics up to 1M cases (~40 s), their query, the table, JSON, chart, a margin
FINISHING_S = 100


@dataclass(frozen=True)
class Sizes:
    name: str
    seconds: float  # each timed throughput run
    latency_seconds: float  # each one-at-a-time latency run
    copy_rows: int
    import_cases: int  # about 5.2 events a case
    open_cases: int  # cases the HTTP commands act on
    query_cases: int
    rebuild_small_events: int
    rebuild_large_events: int
    sweep_cases: int
    webhook_alerts: int  # alerts written at once for the deliveries/s figure (x 4 subscriptions)


FULL = Sizes("full", 10, 4, 1_000_000, 10_000, 3_200, 1_000_000, 100_000, 1_000_000, 10_000, 1_000)
QUICK = Sizes("quick", 3, 1.5, 100_000, 2_000, 640, 100_000, 20_000, 100_000, 2_000, 250)


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
    with bench_server() as server:
        url = fresh_database(server)
        # The store append figure writes bench events that are no complaint's: a database apart.
        store_url = fresh_database(server, f"{BENCH_DATABASE}_store")
        # The webhook figures want an alert runner with nothing else to fold: a database apart.
        hooks_url = fresh_database(server, f"{BENCH_DATABASE}_webhooks")
        machine_info["postgresql"] = server_settings(url)
        measured = measure(url, store_url, sizes, args.workers, args.results)
        log("alerts to webhooks: latency, then deliveries/s to a loopback receiver")
        asyncio.run(figures.seed_reference_data(hooks_url))
        args.results.mkdir(parents=True, exist_ok=True)
        measured["webhooks"] = webhook_rows.measure(
            hooks_url, args.results / "serve.log.tmp", sizes.latency_seconds, sizes.webhook_alerts
        )
    machine_info["bench_seconds"] = round(time.monotonic() - started)
    machine_info["sizes"] = sizes.name
    rows = build_rows(measured)
    print(table(rows))
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
    log("baselines: raw append, raw COPY, raw read, peer (eventsourcing)")
    measured["baselines"] = baselines.measure_all(url, sizes.seconds, sizes.copy_rows)
    log("store append")
    measured["store_append"] = asyncio.run(figures.store_append(store_url, sizes.seconds))
    token = asyncio.run(figures.seed_reference_data(url))
    log(f"bulk import of {sizes.import_cases} cases")
    lines = list(histories.case_lines(sizes.import_cases))
    measured["import"], _ = asyncio.run(figures.bulk_import(url, lines))
    extra = [
        histories.long_case_line(figures.LONG_CASE),
        *figures.open_case_lines(sizes.open_cases),
    ]
    asyncio.run(figures.bulk_import(url, extra))
    open_ids = [figures.case_id_for(f"BENCH-OPEN-{n:08d}") for n in range(sizes.open_cases)]
    log(f"retention sweep of {sizes.sweep_cases} cases closed years ago")
    measured["sweep"] = asyncio.run(figures.retention_sweep(url, sizes.sweep_cases))
    if rebuild_available():
        measured["rebuild_small"] = rebuild_to(
            url, sizes.rebuild_small_events, sizes, "small", measured
        )
    results.mkdir(parents=True, exist_ok=True)
    with serving(url, results / "serve.log.tmp", workers) as base_url:
        log("load generator ceiling on /healthz")
        measured["ceiling"], _ = figures.healthz_ceiling(base_url, sizes.seconds)
        log("commands over HTTP, 32 clients")
        measured["commands"], measured["command_statuses"] = figures.http_commands(
            base_url, token, open_ids, sizes.seconds
        )
        # The server's statistics runner folds the burst's events after it: the replays are
        # measured on the server at rest, as a regulator's would usually find it.
        measured["statistics_catch_up_s"] = figures.statistics_caught_up(url)
        log(f"statistics runner caught up in {measured['statistics_catch_up_s']:.1f} s")
        log("replay of a 30-event case")
        measured["replay"] = figures.replay(base_url, token, sizes.latency_seconds)
        log("reveal of one case's personal data")
        measured["reveal"] = figures.reveal(base_url, token, open_ids, sizes.latency_seconds)
        log(f"{sizes.query_cases} cases into case_view, then the deadline queries")
        asyncio.run(figures.fill_case_view(url, sizes.query_cases))
        measured["query_cases"] = figures.case_count(url)
        measured["queries"] = figures.deadline_queries(base_url, token, sizes.latency_seconds)
    if rebuild_available():
        events = large_rebuild_size(sizes, measured, started)
        if events < sizes.rebuild_large_events:
            measured["rebuild_large_cut"] = (
                f"cut from {sizes.rebuild_large_events:,} events to stay within"
                f" {TIME_BUDGET_S // 60} minutes"
            )
            log(f"large rebuild {measured['rebuild_large_cut']}")
        measured["rebuild_large"] = rebuild_to(url, events, sizes, "large", measured)
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
    return measured


def large_rebuild_size(sizes: Sizes, measured: dict[str, Any], started: float) -> int:
    """TARGETS.md's size, or fewer events if the paces seen so far (copying the histories in,
    the small rebuild) say it would not finish within the time budget."""
    small = measured.get("rebuild_small")
    if not isinstance(small, RebuildRun) or small.events_per_second <= 0:
        return sizes.rebuild_large_events
    left = TIME_BUDGET_S - FINISHING_S - (time.monotonic() - started)
    copy_pace = measured.get("copy_events_per_second", small.events_per_second)
    seconds_per_event = 1 / copy_pace + 1 / small.events_per_second
    affordable = int(left / seconds_per_event)
    return max(2 * small.events, min(sizes.rebuild_large_events, affordable))


@dataclass(frozen=True)
class RebuildFailed:
    reason: str


def rebuild_to(
    url: str, events: int, sizes: Sizes, label: str, measured: dict[str, Any]
) -> RebuildRun | RebuildFailed:
    """Copy the imported histories until the store holds about `events` events, then rebuild
    every projection in a child process."""
    stored = figures.event_count(url)
    source = [figures.case_id_for(f"LEGACY-{n:08d}") for n in range(sizes.import_cases)]
    copies_done = measured.get("copies", 0)
    copies_needed = max(0, round((events - stored) / figures.event_count(url, source)))
    if copies_needed:
        log(f"copying the imported histories {copies_needed} times ({events:,} events)")
        copying = time.monotonic()
        asyncio.run(
            figures.copy_histories(url, source, copies_done + 1, copies_done + copies_needed)
        )
        measured["copies"] = copies_done + copies_needed
        copied = figures.event_count(url) - stored
        measured["copy_events_per_second"] = copied / max(time.monotonic() - copying, 1e-3)
    log(f"rebuild from {figures.event_count(url):,} events")
    try:
        return rebuild_in_child(url)
    except subprocess.CalledProcessError as failure:
        last_line = (failure.stderr or "").strip().splitlines()[-1:] or ["no message"]
        log(f"the {label} rebuild failed: {last_line[0]}")
        return RebuildFailed(last_line[0])


def build_rows(measured: dict[str, Any]) -> list[Row]:
    base = measured["baselines"]
    raw_append, raw_copy, raw_read, peer = (
        base["raw_append"].per_second,
        base["raw_copy"].per_second,
        base["raw_read"].per_second,
        base["peer"].per_second,
    )
    store = measured["store_append"].per_second
    cases = f"{measured['query_cases']:,}"
    commands: Throughput = measured["commands"]
    ceiling: Throughput = measured["ceiling"]
    rows = [
        info_row("baseline: raw append (16 tasks, INSERT per event)", raw_append, "events/s"),
        info_row("baseline: raw COPY", raw_copy, "rows/s"),
        info_row("baseline: raw read (keyset, 10,000 a batch)", raw_read, "rows/s"),
        info_row("baseline: peer, eventsourcing (16 threads)", peer, "events/s"),
        ratio_row(
            "store append, 16 concurrent single-event appends",
            store,
            "events/s",
            raw_append,
            "raw append",
            0.8,
        ),
        ratio_row("store append vs the peer", store, "events/s", peer, "peer", 5),
        ratio_row(
            "command over HTTP, 32 clients",
            commands.per_second,
            "commands/s",
            raw_append,
            "raw append",
            0.3,
        ),
        info_row(
            "command over HTTP p50",
            commands.percentile(50),
            "ms",
            _statuses(measured["command_statuses"]),
        ),
        ceiling_row("command over HTTP p99", commands.percentile(99), "ms", 50),
        Row(
            "load generator ceiling (/healthz, 32 clients)",
            ceiling.per_second,
            "requests/s",
            commands.per_second,
            "commands/s",
            ceiling.per_second / commands.per_second if commands.per_second else None,
            "well above commands/s",
            ceiling.per_second > 1.5 * commands.per_second,
        ),
        ratio_row(
            "bulk import through the store",
            measured["import"].per_second,
            "events/s",
            raw_copy,
            "raw COPY",
            0.3,
        ),
    ]
    rows += rebuild_rows(measured, raw_read)
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
    rows.append(
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
            + f"; measured once the runner caught up ({measured['statistics_catch_up_s']:.1f} s)",
        )
    )
    reveal: Throughput = measured["reveal"]
    rows.append(
        ceiling_row(
            "reveal of one case's personal data p99",
            reveal.percentile(99),
            "ms",
            10,
            f"p50 {reveal.percentile(50):.1f} ms; each call logged before it answers",
        )
    )
    for name, throughput in measured["queries"].items():
        rows.append(
            ceiling_row(
                f"deadline query {name}, {cases} cases, p99",
                throughput.percentile(99),
                "ms",
                20,
                f"p50 {throughput.percentile(50):.1f} ms",
            )
        )
    rows += webhook_figure_rows(measured["webhooks"])
    statistics = measured.get("statistics")
    figure = f"statistics, head office, a year, {measured.get('statistics_cases', 0):,} cases, p99"
    if statistics is None:
        note = "not measured: no statistics route or projection"
        rows.append(Row(figure, None, "ms", target="<= 100 ms", note=note))
    else:
        rows.append(ceiling_row(figure, statistics.percentile(99), "ms", 100))
    return rows


def webhook_figure_rows(hooks: webhook_rows.WebhookFigures) -> list[Row]:
    """TARGETS.md: alert from commit to webhook delivery, local receiver: p99 <= 2 s; >= 500
    deliveries/s sustained."""
    latency, deliveries = hooks.latency, hooks.deliveries
    waited = webhook_rows.ARRIVAL_TIMEOUT_S
    lost = f"; {hooks.lost} not arrived within {waited} s" * bool(hooks.lost)
    expected = hooks.expected
    return [
        ceiling_row(
            "alert latency, command commit to webhook arrival (loopback receiver), p99",
            latency.percentile(99) / 1000,
            "s",
            2,
            f"p50 {latency.percentile(50) / 1000:.2f} s over {latency.operations} complaints"
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


def rebuild_rows(measured: dict[str, Any], raw_read: float) -> list[Row]:
    small = measured.get("rebuild_small")
    large = measured.get("rebuild_large")
    if not isinstance(small, RebuildRun) or not isinstance(large, RebuildRun):
        failed = small if isinstance(small, RebuildFailed) else large
        note = (
            f"rebuild failed: {failed.reason}"
            if isinstance(failed, RebuildFailed)
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
    rss_ratio = large.peak_rss_mib / small.peak_rss_mib
    time_ratio = large.seconds / small.seconds
    rebuild = ratio_row(
        f"full projection rebuild (case state + statistics), {large.events:,} events",
        large.events_per_second,
        "events/s",
        raw_read,
        "raw read",
        0.25,
    )
    return [
        replace(rebuild, note=measured.get("rebuild_large_cut", "")),
        Row(
            f"rebuild peak RSS, {large.events:,} vs {small.events:,} events",
            rss_ratio,
            "x",
            target="<= 1.5 x",
            met=rss_ratio <= 1.5,
            note=f"{large.peak_rss_mib:.0f} MiB vs {small.peak_rss_mib:.0f} MiB",
        ),
        Row(
            f"rebuild time, {large.events:,} vs {small.events:,} events",
            time_ratio,
            "x",
            target=f"<= {11 * large.events / small.events / 10:.1f} x (linear + 10%)",
            met=time_ratio <= 1.1 * large.events / small.events,
            note=f"{large.seconds:.1f} s vs {small.seconds:.1f} s",
        ),
    ]


def _statuses(statuses: dict[str, int]) -> str:
    return "statuses " + ", ".join(f"{code}: {count}" for code, count in sorted(statuses.items()))


def throughput_bars(measured: dict[str, Any]) -> dict[str, float]:
    base = measured["baselines"]
    bars = {
        "baseline: raw append": base["raw_append"].per_second,
        "store append": measured["store_append"].per_second,
        "commands over HTTP": measured["commands"].per_second,
        "baseline: peer (eventsourcing)": base["peer"].per_second,
        "baseline: raw COPY": base["raw_copy"].per_second,
        "bulk import": measured["import"].per_second,
        "baseline: raw read": base["raw_read"].per_second,
        "webhook deliveries": measured["webhooks"].deliveries.per_second,
    }
    if isinstance(measured.get("rebuild_large"), RebuildRun):
        bars["full rebuild"] = measured["rebuild_large"].events_per_second
    return bars


def latency_series(measured: dict[str, Any]) -> dict[str, list[float]]:
    base = measured["baselines"]
    series = {
        "raw append (16 tasks)": base["raw_append"].latencies_ms,
        "store append (16 tasks)": measured["store_append"].latencies_ms,
        "peer append (16 threads)": base["peer"].latencies_ms,
        "command over HTTP (32 clients)": measured["commands"].latencies_ms,
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
