"""The live gauges of a process gone without its shutdown are dropped from the shared folder at the
next scrape; a live process's stay, and the counters of both (totals never go down)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from complaintcore.infra.metrics import MULTIPROCESS_DIR_VARIABLE, forget_dead_processes


def test_the_live_gauges_of_a_dead_process_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_pid, live_pid = int(gone.stdout), os.getpid()
    for name in (
        f"gauge_liveall_{dead_pid}.db",
        f"gauge_livesum_{dead_pid}.db",
        f"counter_{dead_pid}.db",
        f"gauge_liveall_{live_pid}.db",
    ):
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setenv(MULTIPROCESS_DIR_VARIABLE, str(tmp_path))

    assert forget_dead_processes() == [dead_pid]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [f"counter_{dead_pid}.db", f"gauge_liveall_{live_pid}.db"]
    )
