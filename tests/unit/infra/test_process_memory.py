"""A process's own peak memory, not its parent's at the fork (Linux's ru_maxrss after exec)."""

import subprocess
import sys

from complaintcore.infra.process_memory import peak_rss_kib

MIB = 1024

CHILD = """
import sys
from complaintcore.infra.process_memory import peak_rss_kib
held = bytearray(int(sys.argv[1]) * 2**20)  # zero-filled, so every page is touched
print(peak_rss_kib())
"""


def child_peak_kib(allocating_mib: int) -> int:
    ran = subprocess.run(
        [sys.executable, "-c", CHILD, str(allocating_mib)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(ran.stdout)


def test_a_small_child_of_a_large_parent_reports_its_own_size() -> None:
    ballast = bytearray(400 * 2**20)  # this process grows past 400 MiB before it forks
    assert peak_rss_kib() >= 400 * MIB
    assert child_peak_kib(0) < 150 * MIB
    del ballast


def test_what_a_process_holds_shows_in_its_peak() -> None:
    assert child_peak_kib(200) >= 200 * MIB
