"""Small measuring helpers shared by the bench's figures."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass
class Throughput:
    """Operations done in a time, with each one's latency in milliseconds when recorded."""

    operations: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.operations / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def run_workers(
    workers: int, seconds: float, operation: Callable[[int, int], Awaitable[None]]
) -> Throughput:
    """`workers` tasks each calling `operation(worker, n)` in a loop for `seconds`."""
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []

    async def worker(index: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await operation(index, n)
            latencies.append((time.perf_counter() - started) * 1000)
            n += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(index) for index in range(workers)))
    return Throughput(len(latencies), time.perf_counter() - started, latencies)
