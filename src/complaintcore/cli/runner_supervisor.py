"""How `serve` keeps each `complaintcore runners` child (cli/runners.py) running: started after
the migrations and the master key check, restarted with back-off if it dies, stopped when `serve`
stops. The standard library and structlog only: `serve` imports this before it sets the metrics
folder, so nothing here may import prometheus_client (infra/metrics.py)."""

import os
import signal
import subprocess
import sys
import threading
import time

import structlog

RUNNER_PARENT_VARIABLE = "COMPLAINTCORE_RUNNER_PARENT"  # `serve`'s pid, for its runner child
log = structlog.get_logger("complaintcore.runners")

RESTART_FIRST_S = 1.0
RESTART_CAP_S = 30.0
HEALTHY_AFTER_S = 60.0  # a child that ran this long restarts after the shortest wait again
STOP_GRACE_S = 15.0


class RunnerSupervisor:
    """One `complaintcore runners` child of `serve`, kept running from a thread of its own
    (which also forks every child, as `PR_SET_PDEATHSIG` follows the forking thread)."""

    def __init__(
        self,
        command: list[str] | None = None,
        *,
        restart_first_s: float = RESTART_FIRST_S,
        restart_cap_s: float = RESTART_CAP_S,
    ) -> None:
        self._command = command or [
            sys.executable,
            "-m",
            "complaintcore.cli",
            "runners",
            "--supervised",
        ]
        self._restart_first_s = restart_first_s
        self._restart_cap_s = restart_cap_s
        self._stopping = threading.Event()
        # a daemon: `serve` ended by a signal does not wait for it (the child then gets its
        # SIGTERM from the kernel, `PR_SET_PDEATHSIG`, or sees its parent gone)
        self._thread = threading.Thread(
            target=self._supervise, name="runner supervisor", daemon=True
        )
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        with self._lock:
            return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Stop the child (and keep none running) without waiting: `serve` asks all of its
        supervisors at once, then waits for each (`stop`)."""
        self._stopping.set()

    def stop(self) -> None:
        self.request_stop()
        self._thread.join()

    def _supervise(self) -> None:
        delay = self._restart_first_s
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                # a session of its own: a Ctrl-C meant for `serve` reaches `serve`, which then
                # stops the child, rather than both at once (and the child restarted meanwhile)
                process = subprocess.Popen(
                    self._command,
                    start_new_session=True,
                    env={**os.environ, RUNNER_PARENT_VARIABLE: str(os.getpid())},
                )
            except OSError as error:
                log.error("runner process could not start", error=str(error), in_s=delay)
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, self._restart_cap_s)
                continue
            with self._lock:
                self._process = process
            log.info("runner process spawned", pid=process.pid)
            while process.poll() is None and not self._stopping.wait(0.2):
                pass
            if self._stopping.is_set():
                self._terminate(process)
                return
            code = process.returncode
            if time.monotonic() - started >= HEALTHY_AFTER_S:
                delay = self._restart_first_s
            elif delay > self._restart_first_s:
                # ended early again (a start refused: the master key, the database): the
                # projections and the webhooks stay stopped until it starts, an error each time
                log.error(
                    "runner process keeps exiting: projections and webhooks are not running",
                    pid=process.pid,
                    code=code,
                )
            log.warning("runner process exited; restarting", pid=process.pid, code=code, in_s=delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self._restart_cap_s)

    def _terminate(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                log.warning("runner process did not stop in time; killed", pid=process.pid)
                process.kill()
                process.wait()
        log.info("runner process stopped", pid=process.pid, code=process.returncode)
