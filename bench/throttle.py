"""Run a command on a share of this machine's CPU, cut by a cgroup CPU quota: an emulated slow
machine for `make bench-slow` (TARGETS.md "Headroom": a figure holds only where a Python loop of
10 million additions takes 3 s or more; the machines here take 0.6 to 0.8 s).

    python -m bench.throttle CORES -- COMMAND [ARGUMENT ...]

CORES is the CPU time the command and every process it starts get together, in cores (0.22: a
millisecond of running in every 4.5, the kernel's shortest quota being a millisecond). Needs root
and the cgroup `cpu` controller (version 1, `cpu.cfs_quota_us`, or version 2, `cpu.max`); the
group is removed at the end.

How far it is from a slow machine: a slow core runs one thread slower, a quota lets every thread
run at full speed for a share of each millisecond. A single thread is slowed alike (the Python
loop probe shows it), but the quota binds all processes together: a machine of two cores each as
slow as the quota's loop has twice this CPU in all, so figures that use both cores (a rebuild's
workers, the server beside its runner and the database) come out lower here than there. The disk
is not slowed. Where a figure holds under this quota it holds on such a machine.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
SHORTEST_QUOTA_US = 1_000  # the kernel's least: short slices, so a thread never waits long


def cpu_quota_cores(cgroup_file: Path = Path("/proc/self/cgroup")) -> float | None:
    """The CPU quota of the cgroup this process is in, in cores (None: not limited, or unknown)."""
    try:
        lines = cgroup_file.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            folder = CGROUP_ROOT / "cpu" / path.lstrip("/")
            return _quota_v1(folder)
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


def _make_group(cores: float) -> tuple[Path, Path]:
    """A new cgroup limited to `cores`: (its folder, the root's process list to move back to)."""
    name = f"complaintcore-bench-{os.getpid()}"
    quota_us = max(SHORTEST_QUOTA_US, round(cores * SHORTEST_QUOTA_US))
    period_us = round(quota_us / cores)
    version_1 = CGROUP_ROOT / "cpu"
    if (version_1 / "cpu.cfs_quota_us").exists():
        group = version_1 / name
        group.mkdir()
        (group / "cpu.cfs_period_us").write_text(str(period_us))
        (group / "cpu.cfs_quota_us").write_text(str(quota_us))
        return group, version_1 / "cgroup.procs"
    group = CGROUP_ROOT / name
    group.mkdir()
    (group / "cpu.max").write_text(f"{quota_us} {period_us}")
    return group, CGROUP_ROOT / "cgroup.procs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.throttle", description=__doc__)
    parser.add_argument("cores", type=float, help="CPU time for all processes together, in cores")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGUMENT ...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or not 0 < args.cores <= (os.cpu_count() or 1):
        parser.error("a quota between 0 and the number of cores, then -- COMMAND")
    group, root_procs = _make_group(args.cores)
    try:
        (group / "cgroup.procs").write_text(str(os.getpid()))
        return subprocess.call(command)
    finally:
        root_procs.write_text(str(os.getpid()))
        group.rmdir()


if __name__ == "__main__":
    sys.exit(main())
