"""Small measuring helpers shared by the bench's figures."""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Throughput:
    """Operations done in a time, with each one's latency in milliseconds when recorded;
    `failed`: how many of them were answered with an error (counted in `operations` and the
    latencies: a figure with any is not met, `bench.report.unless_failed`)."""

    operations: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    failed: int = 0

    @property
    def per_second(self) -> float:
        return self.operations / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


def merged(runs: list["Throughput"]) -> "Throughput":
    """Several windows of one figure as one: their operations, seconds and latencies together
    (a p99 over every round's requests)."""
    return Throughput(
        sum(run.operations for run in runs),
        sum(run.seconds for run in runs),
        [latency for run in runs for latency in run.latencies_ms],
        sum(run.failed for run in runs),
    )


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


async def run_workers(
    workers: int,
    seconds: float,
    operation: Callable[[int, int], Awaitable[None]],
    warmup_seconds: float = 0.0,
) -> Throughput:
    """`workers` tasks each calling `operation(worker, n)` in a loop for `warmup_seconds`, not
    counted (connections and statements warmed up), then for `seconds`: operations started in
    the counted window, from its start to the last one's end."""
    counted_from = time.perf_counter() + warmup_seconds
    deadline = counted_from + seconds
    latencies: list[float] = []

    async def worker(index: int) -> None:
        n = 0
        while (started := time.perf_counter()) < deadline:
            await operation(index, n)
            if started >= counted_from:
                latencies.append((time.perf_counter() - started) * 1000)
            n += 1

    await asyncio.gather(*(worker(index) for index in range(workers)))
    return Throughput(len(latencies), time.perf_counter() - counted_from, latencies)
