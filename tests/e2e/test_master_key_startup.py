"""`complaintcore serve` holds and checks its master key at start-up (API.md "Personal data"):
no key file with DATABASE_URL, a missing, damaged or wrong key file each refuse in one line
naming what to fix; the embedded default makes its own key (0600) once and reuses it."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from complaintcore.crypto.keys import FileKeyProvider, create_master_key_file
from complaintcore.crypto.suites import suite_named
from complaintcore.events.case_keys import CaseKeys
from testsupport import free_port

REFUSAL_TIMEOUT_S = 20  # the refusal comes before the database is waited for
READY_TIMEOUT_S = 60


def base_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "COMPLAINTCORE_MASTER_KEY_FILE", "COMPLAINTCORE_CIPHER_SUITE")
    }
    env["COMPLAINTCORE_LOG_FORMAT"] = "json"
    env.update(extra)
    return env


def refused(env: dict[str, str]) -> str:
    """Run serve, expecting a refusal: exit 1 within the timeout; its one stderr line."""
    started = time.monotonic()
    finished = subprocess.run(
        [sys.executable, "-m", "complaintcore.cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=REFUSAL_TIMEOUT_S,
        check=False,
    )
    assert finished.returncode == 1, finished.stderr
    assert time.monotonic() - started < REFUSAL_TIMEOUT_S
    assert "Traceback" not in finished.stderr
    refusals = [line for line in finished.stderr.splitlines() if line.startswith("complaintcore:")]
    assert len(refusals) == 1, finished.stderr
    return refusals[0]


class Serving:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "complaintcore.cli", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output = ""

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}: {self.stop()}")
            try:
                response = httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1)
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail(f"serve was not ready in time: {self.stop()}")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.output += self.process.stdout.read().decode(errors="replace")
            self.process.stdout.close()
        return self.output


def serve_until_ready(env: dict[str, str]) -> str:
    """Serve, expect /readyz 200, stop; the output."""
    server = Serving(env)
    try:
        server.wait_until_ready()
    finally:
        output = server.stop()
    assert server.process.returncode == 0, output
    return output


@pytest.fixture
def scratch() -> Iterator[Path]:
    """Not pytest's tmp_path: the embedded server runs as another user when we are root, and a
    pytest run starting meanwhile may reset its base folder to mode 0700."""
    folder = Path(tempfile.mkdtemp(prefix="complaintcore-master-key-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# --- with DATABASE_URL ----------------------------------------------------------------------


def test_no_key_file_with_a_database_url_is_refused_naming_the_setting(database_url: str) -> None:
    line = refused(base_env(DATABASE_URL=database_url))
    assert "COMPLAINTCORE_MASTER_KEY_FILE" in line
    assert "complaintcore keys create FILE" in line


def test_a_key_file_that_does_not_exist_is_refused_naming_it(
    database_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such.key"
    line = refused(base_env(DATABASE_URL=database_url, COMPLAINTCORE_MASTER_KEY_FILE=str(missing)))
    assert str(missing) in line
    assert "does not exist" in line


def test_a_damaged_key_file_is_refused(database_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    create_master_key_file(key_file)
    text = key_file.read_text()
    *head, last = text.rstrip("\n").split("\n")
    key = last.rsplit(" ", 1)[1]
    flipped = ("B" if key[0] == "A" else "A") + key[1:]  # one character of the key changed
    key_file.write_text("\n".join([*head, last[: -len(key)] + flipped]) + "\n")
    line = refused(base_env(DATABASE_URL=database_url, COMPLAINTCORE_MASTER_KEY_FILE=str(key_file)))
    assert str(key_file) in line
    assert "damaged" in line


async def test_a_database_of_another_master_key_is_refused_naming_both_ids(
    database_url: str, tmp_path: Path
) -> None:
    other_file, ours_file = tmp_path / "other.key", tmp_path / "ours.key"
    other_id = create_master_key_file(other_file)
    ours_id = create_master_key_file(ours_file)
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            keys = CaseKeys(FileKeyProvider(other_file), suite_named("aes-256-gcm"))
            await keys.create(connection, "case-under-another-key")
    finally:
        await connection.close()
    env = base_env(DATABASE_URL=database_url, COMPLAINTCORE_MASTER_KEY_FILE=str(ours_file))
    finished = subprocess.run(
        [sys.executable, "-m", "complaintcore.cli", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT_S,
        check=False,
    )
    assert finished.returncode == 1, finished.stderr
    refusals = [line for line in finished.stderr.splitlines() if line.startswith("complaintcore:")]
    assert len(refusals) == 1, finished.stderr
    assert ours_id in refusals[0] and other_id in refusals[0]
    assert "Traceback" not in finished.stderr


def test_a_good_key_serves(database_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_id = create_master_key_file(key_file)
    output = serve_until_ready(
        base_env(DATABASE_URL=database_url, COMPLAINTCORE_MASTER_KEY_FILE=str(key_file))
    )
    assert key_id in output  # "master key accepted", by id
    assert key_file.read_text().rsplit(" ", 1)[1].strip() not in output  # never the key itself


def test_an_sm4_key_serves_under_the_sm4_suite(database_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "sm4.key"
    create_master_key_file(key_file, "sm4-gcm")
    serve_until_ready(
        base_env(
            DATABASE_URL=database_url,
            COMPLAINTCORE_MASTER_KEY_FILE=str(key_file),
            COMPLAINTCORE_CIPHER_SUITE="sm4-gcm",
        )
    )


# --- the embedded default -------------------------------------------------------------------


def test_the_embedded_default_creates_its_key_once_and_reuses_it(scratch: Path) -> None:
    data_dir = scratch / "pgdata"
    env = base_env(COMPLAINTCORE_DATA_DIR=str(data_dir))
    first = serve_until_ready(env)
    key_file = data_dir.resolve() / "master.key"
    assert key_file.is_file()
    assert key_file.stat().st_mode & 0o777 == 0o600
    created = [
        json.loads(line)
        for line in first.splitlines()
        if line.startswith("{") and "master key file created" in line
    ]
    assert len(created) == 1, first
    assert created[0]["path"] == str(key_file)
    key_id = created[0]["key_id"]
    assert FileKeyProvider(key_file).key_id == key_id

    second = serve_until_ready(env)
    assert "master key file created" not in second
    assert str(key_file) in second
    assert FileKeyProvider(key_file).key_id == key_id  # the same key, not a new one
    assert key_id in second

    # the file lost (a restore of the data folder without it): refused, naming the key it needs,
    # and no new file made in its place
    key_file.unlink()
    refusal = refused(env)
    assert str(key_file) in refusal and key_id in refusal and "missing" in refusal
    assert not key_file.exists()
