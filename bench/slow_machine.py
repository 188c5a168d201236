"""An emulated slow machine for `make bench-slow` (TARGETS.md "Headroom": a figure holds only
where a Python loop of 10 million additions takes 3 s or more; the machines here take 0.6 to
0.8 s), and the CPU limits the bench header reports.

    python -m bench.slow_machine [--nice N] -- COMMAND [ARGUMENT ...]

Busy neighbours: one process per core, pinned to it, spinning at nice N (default -6), for as long
as COMMAND runs. The scheduler shares each core between the neighbour and whatever of the command
runs there by their weights (nice -6 weighs 3,906 against a normal process's 1,024), so every
process of the command, the database's included, gets about a fifth of any core it runs on: a
single thread is slowed as on a slow core (the loop probe shows it) and two threads on two cores
still get twice that, as on a two-core slow machine. Tried first and dropped: a cgroup CPU quota,
which binds all processes together (half a slow two-core machine's CPU when both cores are busy)
and stalls every thread for the rest of each period (a 30-event replay's p99 at 150 ms).

It is not a slow machine, and its first run (README, "On the emulated slow machine") was
harsher than the real one of issue 17 wherever Python does the work (a 30-event replay's p99 35.7
ms against 12.6 ms there, for older code): a process that wakes waits for the neighbour's slice
before it runs, one that sleeps often (a database backend between round trips, a COPY waiting
on its writes) gets more than its fifth, so the database-bound baselines slow down less than the
Python, and the disk is not slowed. A figure it meets holds on the slow machine; one it misses
may or may not. The command gets `COMPLAINTCORE_BENCH_EMULATION`, which the bench header prints.

Needs root (a negative nice).
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

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


def _neighbours(nice: int) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen([sys.executable, "-c", _NEIGHBOUR, str(core), str(nice)])
        for core in sorted(os.sched_getaffinity(0))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.slow_machine", description=__doc__)
    parser.add_argument("--nice", type=int, default=-6, help="the neighbours' nice (-20 to -1)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGUMENT ...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or not -20 <= args.nice <= -1:
        parser.error("a nice from -20 to -1, then -- COMMAND")
    neighbours = _neighbours(args.nice)
    emulation = f"a busy neighbour at nice {args.nice} on each of {len(neighbours)} cores"
    try:
        return subprocess.call(command, env=os.environ | {EMULATION_VARIABLE: emulation})
    finally:
        for neighbour in neighbours:
            neighbour.kill()
            neighbour.wait()


if __name__ == "__main__":
    sys.exit(main())
