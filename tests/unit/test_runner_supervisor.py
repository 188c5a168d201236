"""`serve`'s runner supervisor: a child that keeps ending at once (a start refused) is restarted
with a growing wait, and said to be an error each time after the first, so an operator sees that
the projections and the webhooks are not running."""

import sys
import time

from structlog.testing import capture_logs

from complaintcore.cli.runner_supervisor import RunnerSupervisor


def test_a_child_that_keeps_exiting_at_once_is_an_error_and_waits_longer_each_time() -> None:
    supervisor = RunnerSupervisor(
        [sys.executable, "-c", "raise SystemExit(1)"], restart_first_s=0.05, restart_cap_s=0.2
    )
    with capture_logs() as logs:
        supervisor.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            exits = [e for e in logs if e["event"] == "runner process exited; restarting"]
            if len(exits) >= 4:
                break
            time.sleep(0.05)
        supervisor.stop()

    exits = [e for e in logs if e["event"] == "runner process exited; restarting"]
    assert len(exits) >= 4, logs
    assert [e["in_s"] for e in exits[:4]] == [0.05, 0.1, 0.2, 0.2]
    assert all(e["code"] == 1 for e in exits)
    errors = [e for e in logs if e["log_level"] == "error"]
    assert errors and all("projections and webhooks are not running" in e["event"] for e in errors)
    assert len(errors) >= len(exits) - 1
