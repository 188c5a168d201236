"""A child process of `complaintcore serve` ends with it, whoever ends it: `serve` stops its
children when it stops, but killed (SIGKILL, the OOM killer) it cannot, and a child left behind
goes on holding what the deployment's next `serve` needs (a runner's lock, the port)."""

import signal
import sys


def die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent ends (a no-op elsewhere, where a
    watch on the parent must do)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
