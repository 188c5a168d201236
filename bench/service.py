"""`complaintcore serve` on a loopback port for the HTTP figures, and the load generator."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import httpx

from bench.database import bench_master_key_file
from bench.measure import Throughput


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(
    database_url: str, log_path: Path, workers: int = 1, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DATABASE_URL=database_url,
        COMPLAINTCORE_LOG_FORMAT="json",
        COMPLAINTCORE_MASTER_KEY_FILE=str(bench_master_key_file()),
    )
    env.update(extra_env or {})
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "complaintcore.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_ready(process, base_url)
            yield base_url
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_ready(process: subprocess.Popen[bytes], base_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("serve was not ready in time")


def load(
    base_url: str,
    requests: list[tuple[str, str, str | None]],
    connections: int,
    seconds: float,
    token: str | None = None,
    warmup_seconds: float = 1.0,
    min_requests: int = 0,
) -> tuple[Throughput, dict[str, int]]:
    """Run the load generator in its own process; its throughput and the statuses it got."""
    host, port = base_url.removeprefix("http://").split(":")
    spec: dict[str, Any] = {
        "host": host,
        "port": int(port),
        "connections": connections,
        "seconds": seconds,
        "warmup_seconds": warmup_seconds,
        "min_requests": min_requests,
        "headers": {"Authorization": f"Bearer {token}"} if token else {},
        "requests": requests,
    }
    result = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 300,
    )
    measured = _measured(result)
    statuses: dict[str, int] = measured["statuses"]
    errors = sum(count for status, count in statuses.items() if not status.startswith("2"))
    return (
        Throughput(measured["requests"], measured["seconds"], measured["latencies_ms"], errors),
        statuses,
    )


def _measured(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The load generator's one JSON line, or an error that shows what it printed instead (an
    emulated run of 2026-12-06 20:19 UTC failed on a line break at character 131,072 of it)."""
    try:
        return cast(dict[str, Any], json.loads(result.stdout))
    except json.JSONDecodeError as error:
        around = result.stdout[max(0, error.pos - 60) : error.pos + 60]
        raise RuntimeError(
            f"the load generator printed {len(result.stdout):,} characters that are not one JSON"
            f" line ({error}); around it: {around!r}; its stderr ends:"
            f" {result.stderr[-2000:]!r}"
        ) from None
