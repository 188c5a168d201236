"""`complaintcore serve` as a user runs it: it answers health checks and leaves nothing behind."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from testsupport import free_port, master_key_env

SERVE_START_TIMEOUT_S = 60


def start_serving(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "complaintcore.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_until_healthy(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + SERVE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"serve exited with {process.returncode}:\n{output}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail("serve did not answer /healthz in time")


def postgres_processes_using(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and any(str(data_dir) in arg for arg in cmdline):
            found.append(process)
    return found


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["COMPLAINTCORE_LOG_FORMAT"] = "json"
    return env


def test_serve_answers_health_and_readiness_on_a_given_database(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {**base_env(), "DATABASE_URL": database_url, **master_key_env(tmp_path)}
    process = start_serving(env, port)
    try:
        wait_until_healthy(process, port)
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_without_database_url_runs_embedded_postgres_and_stops_it(
    stop_signal: signal.Signals,
) -> None:
    # Not pytest's tmp_path: the server runs as another user when we are root, and a pytest run
    # starting meanwhile may reset its base folder to mode 0700.
    parent = Path(tempfile.mkdtemp(prefix="complaintcore-serve-"))
    data_dir = parent / "pgdata"
    port = free_port()
    process = start_serving({**base_env(), "COMPLAINTCORE_DATA_DIR": str(data_dir)}, port)
    try:
        wait_until_healthy(process, port)
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        assert postgres_processes_using(data_dir), "the embedded server should be running"
    finally:
        process.send_signal(stop_signal)
        process.wait(timeout=60)
    deadline = time.monotonic() + 10
    while postgres_processes_using(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert postgres_processes_using(data_dir) == []
    shutil.rmtree(parent, ignore_errors=True)


def test_every_log_line_of_a_request_carries_its_correlation_id(
    database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {**base_env(), "DATABASE_URL": database_url, **master_key_env(tmp_path)}
    process = start_serving(env, port)
    try:
        wait_until_healthy(process, port)
        response = httpx.get(
            f"http://127.0.0.1:{port}/healthz", headers={"X-Correlation-Id": "trace-42"}
        )
        assert response.headers["x-correlation-id"] == "trace-42"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    output = process.stdout.read().decode() if process.stdout else ""
    assert '"correlation_id": "trace-42"' in output
