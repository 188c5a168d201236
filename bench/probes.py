"""Two probes of the machine, printed at the top of the bench's table and kept in its JSON, so
that runs on different days (or machines) can be compared:

- **Python loop**: a pure-Python loop of 10 million additions, `for i in range(10_000_000):
  total += i`, run at module level (its names are globals, as when typed into a script or
  `python -c`), best of 3, in seconds: the speed of one core for the kind of work most of
  complaintcore's time goes to.
- **fsync**: `os.pwrite` of 8 KiB at the start of a file then `os.fsync`, 200 times, in the
  filesystem of the bench's PostgreSQL data folder; the median, in microseconds: what a durable
  commit pays at the disk.

TARGETS.md ("Headroom") asks every figure to hold on the slow machine, a loop of 3.6 s against
2.0 s; issue 17 asks for a run where the loop takes 3 s or more: this machine counts as slow
from `SLOW_LOOP_S` up.
"""

import os
import statistics
import tempfile
import time
from pathlib import Path

SLOW_LOOP_S = 3.0
LOOP_ADDITIONS = 10_000_000
FSYNC_BLOCK = 8192
FSYNC_TIMES = 200

_LOOP = compile(
    f"total = 0\nfor i in range({LOOP_ADDITIONS}):\n    total += i\n", "<bench loop>", "exec"
)


def python_loop_seconds(repeats: int = 3) -> float:
    """The best of `repeats` runs of the loop, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        exec(_LOOP, {})  # a fresh module namespace: the loop's names are globals
        best = min(best, time.perf_counter() - started)
    return best


def fsync_microseconds(folder: Path, times: int = FSYNC_TIMES) -> float:
    """The median time of an 8 KiB write and fsync of a file in `folder`, in microseconds."""
    folder.mkdir(parents=True, exist_ok=True)
    block = os.urandom(FSYNC_BLOCK)
    handle, name = tempfile.mkstemp(prefix=".bench-fsync-", dir=folder)
    try:
        os.pwrite(handle, block, 0)
        os.fsync(handle)
        samples = []
        for _ in range(times):
            started = time.perf_counter()
            os.pwrite(handle, block, 0)
            os.fsync(handle)
            samples.append((time.perf_counter() - started) * 1e6)
        return statistics.median(samples)
    finally:
        os.close(handle)
        os.unlink(name)


def is_slow(loop_seconds: float) -> bool:
    return loop_seconds >= SLOW_LOOP_S


def header_lines(machine: dict) -> list[str]:
    """The lines above the table: the machine, its loop and fsync probes."""
    lines = [
        f"machine: {machine.get('cores')} cores, {machine.get('cpu')},"
        f" {machine.get('memory_gib')} GiB, load average at start"
        f" {', '.join(str(x) for x in machine.get('load_average_at_start', []))},"
        f" Python {machine.get('python')}, PostgreSQL"
        f" {machine.get('postgresql', {}).get('server_version', '?')}"
        f" (fsync {machine.get('postgresql', {}).get('fsync', '?')}, synchronous_commit"
        f" {machine.get('postgresql', {}).get('synchronous_commit', '?')})",
    ]
    quota = machine.get("cpu_quota_cores")
    if quota is not None:
        lines.append(f"CPU limit: {quota:g} of a core for the whole run (a cgroup quota)")
    emulation = machine.get("emulation")
    if emulation:
        lines.append(f"emulated slow machine (bench/slow_machine.py): {emulation}")
    loop = machine.get("python_loop_s")
    if loop is not None:
        verdict = "a slow machine" if is_slow(loop) else "not a slow machine"
        lines.append(
            f"Python loop, 10 million additions (best of 3): {loop:.2f} s: {verdict}"
            f" (slow from {SLOW_LOOP_S:g} s, TARGETS.md Headroom / issue 17)"
        )
    fsync = machine.get("fsync_us")
    if fsync is not None:
        lines.append(
            f"fsync probe: {fsync:,.0f} µs median per 8 KiB write + fsync"
            f" ({FSYNC_TIMES} times, {machine.get('fsync_folder', 'the data folder')})"
        )
    if machine.get("bench_seconds") is not None:
        lines.append(f"bench: {machine.get('sizes')} sizes, {machine['bench_seconds']} s in all")
    return lines
