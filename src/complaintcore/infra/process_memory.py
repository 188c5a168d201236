"""The peak resident memory of this process since it started its program.

`getrusage(RUSAGE_SELF).ru_maxrss` is not that on Linux: a process started by fork and exec keeps
the peak its parent had reached when it forked, so a small child of a large parent reports the
parent's size (the bench's rebuild child reported the bench's own memory, 350 MiB, while it never
held more than 70 MiB). `VmHWM` in /proc/self/status is the high-water mark of this program's
own address space. Elsewhere (no /proc), `ru_maxrss` is the best there is.
"""

import resource
from pathlib import Path

_STATUS = Path("/proc/self/status")


def peak_rss_kib() -> int:
    """This program's peak resident set size in KiB."""
    try:
        status = _STATUS.read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])  # "VmHWM:	  123456 kB"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
