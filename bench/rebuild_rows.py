"""The figures that need issue 5's projections: full rebuild speed, rebuild memory and growth.

Each rebuild runs in a fresh process of its own, which reports the rebuild's peak RSS: its own
(`infra.process_memory.peak_rss_kib`, VmHWM, at its end; not `ru_maxrss`, which in a child of
fork and exec starts at the bench's own size when it forked) plus each scan worker process's own
peak, which the worker reads the same way as its scan ends (`RebuildResult.workers_peak_rss_kib`).
A sum of peaks: at least what the processes held together at any moment, so an honest upper
bound.
"""

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass

from bench.database import bench_master_key_file

_REBUILD_SCRIPT = """
import asyncio, json, sys
from complaintcore.infra.process_memory import peak_rss_kib
from complaintcore.projections.rebuild import rebuild
results = asyncio.run(rebuild(sys.argv[1], restart=True))
print(json.dumps({
    "events": max(result.events for result in results),
    "seconds": sum(result.seconds for result in results),
    "peak_rss_kib": peak_rss_kib()
    + sum(result.workers_peak_rss_kib for result in results),
}))
"""


def rebuild_available() -> bool:
    return importlib.util.find_spec("complaintcore.projections.rebuild") is not None


@dataclass(frozen=True)
class RebuildRun:
    events: int
    seconds: float
    peak_rss_mib: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def rebuild_in_child(url: str, timeout_s: float = 900) -> RebuildRun:
    """Rebuild every projection from all the events, in a child process (under the run's master
    key: the case view opens the masked complainant's fields), given up after `timeout_s`."""
    key_file = {"COMPLAINTCORE_MASTER_KEY_FILE": str(bench_master_key_file())}
    result = subprocess.run(
        [sys.executable, "-c", _REBUILD_SCRIPT, url],
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout_s,
        env=os.environ | key_file,
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return RebuildRun(measured["events"], measured["seconds"], measured["peak_rss_kib"] / 1024)
