"""An emulated slow machine for `make bench-slow` (TARGETS.md "Headroom": a figure holds only
where a Python loop of 10 million additions takes 3 s or more), and the CPU limits the bench
header reports.

    python -m bench.slow_machine [--loop-s S | --nice N] -- COMMAND [ARGUMENT ...]

Busy neighbours: one process per core, pinned to it, spinning at nice N, for as long as COMMAND
runs. The scheduler shares each core between the neighbour and whatever of the command runs there
by their weights (nice -6 weighs 3,906 against a normal process's 1,024), so every process of the
command, the database's included, gets a share of any core it runs on: a single thread is slowed
as on a slow core (the loop probe shows it) and two threads on two cores still get twice that, as
on a two-core slow machine. By default N is chosen for this machine (`nice_for`): the mildest at
which the loop, timed here first, would take `--loop-s` (3.6 s, the slow machine of issue 17) by
the weights, and then the loop is timed again beside the neighbours: while it takes less than
3 s (`probes.SLOW_LOOP_S`, a slow machine), a harsher nice is taken (`harsher_nice`), a few times
at most, for the machine's speed may have changed since it was timed alone (run 4 of 2026-12-06:
1.18 s alone, nice -4, 2.59 s beside them). The bench header then gives the loop as it ran (the
machines here take 0.45 to 0.8 s alone: nice -9 to -5). Tried first and dropped: a cgroup CPU
quota, which binds all processes together (half a slow two-core machine's CPU when both cores
are busy) and stalls every thread for the rest of each period (a 30-event replay's p99 at 150
ms).

It is not a slow machine, and its first run (README, "On the emulated slow machine") was
harsher than the real one of issue 17 wherever Python does the work (a 30-event replay's p99 35.7
ms against 12.6 ms there, for older code): a process that wakes waits for the neighbour's slice
before it runs, one that sleeps often (a database backend between round trips, a COPY waiting
on its writes) gets more than its share, so the database-bound baselines slow down less than the
Python, and the disk is not slowed. A figure it meets holds on the slow machine; one it misses
may or may not. The command gets `COMPLAINTCORE_BENCH_EMULATION`, which the bench header prints.

Needs root (a negative nice).
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

from bench.probes import SLOW_LOOP_S as SLOW_FROM_S
from bench.probes import python_loop_seconds

EMULATION_VARIABLE = "COMPLAINTCORE_BENCH_EMULATION"
CGROUP_ROOT = Path("/sys/fs/cgroup")
_NEIGHBOUR = """
import os, sys
os.sched_setaffinity(0, {int(sys.argv[1])})
os.nice(int(sys.argv[2]))
while True:
    pass
"""


def cpu_quota_cores(cgroup_file: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota of the cgroup this process is in (a container's CPU limit), in cores; None:
    not limited, or unknown."""
    try:
        lines = cgroup_file.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return _quota_v1(CGROUP_ROOT / "cpu" / path.lstrip("/"))
        if controllers == "":
            quota = _quota_v2(CGROUP_ROOT / path.lstrip("/"))
            if quota is not None:
                return quota
    return None


def quota_of_v1(quota_us: str, period_us: str) -> float | None:
    """`cpu.cfs_quota_us` and `cpu.cfs_period_us` in cores (-1: not limited)."""
    quota = int(quota_us)
    return None if quota < 0 else quota / int(period_us)


def quota_of_v2(cpu_max: str) -> float | None:
    """`cpu.max` ("QUOTA PERIOD" or "max PERIOD") in cores."""
    quota, period = cpu_max.split()
    return None if quota == "max" else int(quota) / int(period)


def _quota_v1(folder: Path) -> float | None:
    try:
        return quota_of_v1(
            (folder / "cpu.cfs_quota_us").read_text(), (folder / "cpu.cfs_period_us").read_text()
        )
    except OSError:
        return None


def _quota_v2(folder: Path) -> float | None:
    try:
        return quota_of_v2((folder / "cpu.max").read_text())
    except OSError:
        return None


# The kernel's weights of nice -20 to -1 (kernel/sched/core.c, `sched_prio_to_weight`); nice 0
# weighs 1,024.
NICE_0_WEIGHT = 1024
NICE_WEIGHTS = {
    -20: 88761, -19: 71755, -18: 56483, -17: 46273, -16: 36291,
    -15: 29154, -14: 23254, -13: 18705, -12: 14949, -11: 11916,
    -10: 9548, -9: 7620, -8: 6100, -7: 4904, -6: 3906,
    -5: 3121, -4: 2501, -3: 1991, -2: 1586, -1: 1277,
}  # fmt: skip
SLOW_LOOP_S = 3.6


def slowed_loop_s(loop_s: float, nice: int) -> float:
    """What a loop taking `loop_s` alone takes beside a busy neighbour at `nice` on its core, by
    the weights: it gets 1,024 / (1,024 + the neighbour's weight) of the core."""
    return loop_s * (NICE_0_WEIGHT + NICE_WEIGHTS[nice]) / NICE_0_WEIGHT


def nice_for(loop_s: float, target_s: float = SLOW_LOOP_S) -> int:
    """The mildest nice (-1 to -20) at which a busy neighbour slows a loop taking `loop_s` alone
    to `target_s` or more (`slowed_loop_s`); -20 when none does."""
    for nice in range(-1, -21, -1):
        if slowed_loop_s(loop_s, nice) >= target_s:
            return nice
    return -20


def harsher_nice(nice: int, slowed_s: float, target_s: float = SLOW_LOOP_S) -> int | None:
    """After the loop took `slowed_s` beside neighbours at `nice`: None when that is a slow
    machine's (`SLOW_FROM_S` or more; `target_s` when that is less) or `nice` is the harshest
    there is; else the nice for `target_s` by the weights from the speed alone that `slowed_s`
    implies, one step harsher at least."""
    if slowed_s >= min(SLOW_FROM_S, target_s) or nice == -20:
        return None
    alone_s = slowed_s * NICE_0_WEIGHT / (NICE_0_WEIGHT + NICE_WEIGHTS[nice])
    return min(nice - 1, nice_for(alone_s, target_s))


CALIBRATION_STEPS = 4  # each times the loop beside the neighbours (about 11 s at 3.6 s a loop)


def _calibrated(nice: int, target_s: float) -> tuple[int, list[subprocess.Popen[bytes]], float]:
    """Neighbours at `nice`, made harsher while the loop beside them is not slow enough
    (`harsher_nice`), `CALIBRATION_STEPS` times at most: their nice, them, the loop's time."""
    neighbours = _neighbours(nice)
    try:
        slowed_s = python_loop_seconds()
        for _ in range(CALIBRATION_STEPS):
            harsher = harsher_nice(nice, slowed_s, target_s)
            if harsher is None:
                break
            _stop(neighbours)
            nice, neighbours = harsher, _neighbours(harsher)
            slowed_s = python_loop_seconds()
    except BaseException:
        _stop(neighbours)
        raise
    return nice, neighbours, slowed_s


def _stop(neighbours: list[subprocess.Popen[bytes]]) -> None:
    for neighbour in neighbours:
        neighbour.kill()
        neighbour.wait()


def _neighbours(nice: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen([sys.executable, "-c", _NEIGHBOUR, str(core), str(nice)])
        for core in sorted(os.sched_getaffinity(0))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.slow_machine", description=__doc__)
    parser.add_argument("--nice", type=int, help="the neighbours' nice (-20 to -1)")
    parser.add_argument(
        "--loop-s",
        type=float,
        default=SLOW_LOOP_S,
        help=f"without --nice, slow the loop probe to this (default {SLOW_LOOP_S} s)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGUMENT ...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or (args.nice is not None and not -20 <= args.nice <= -1):
        parser.error("a nice from -20 to -1 if any, then -- COMMAND")
    if args.nice is None:
        loop_s = python_loop_seconds()
        nice, neighbours, slowed_s = _calibrated(nice_for(loop_s, args.loop_s), args.loop_s)
        chosen = (
            f" (chosen for a {args.loop_s:g} s loop; {loop_s:.2f} s alone,"
            f" {slowed_s:.2f} s beside them)"
        )
    else:
        nice, neighbours, chosen = args.nice, _neighbours(args.nice), ""
    emulation = f"a busy neighbour at nice {nice} on each of {len(neighbours)} cores{chosen}"
    try:
        return subprocess.call(command, env=os.environ | {EMULATION_VARIABLE: emulation})
    finally:
        _stop(neighbours)


if __name__ == "__main__":
    sys.exit(main())
