"""`complaintcore keys rotate --new-key-file NEW`, run as an operator runs it: a subprocess over a
real PostgreSQL database. Every case key and service key moves to the new master key, the events
table stays byte for byte as it was, the cases read the same under the new key and the old key is
refused; killed midway it leaves the keys under two ids, start-up names the unfinished rotation,
and the same command again finishes it. The embedded default's master.key is left as it is."""

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from api_support import days_ago, decision, ok, post, receive
from complaintcore.auth.tokens import create_token
from complaintcore.crypto.keys import FileKeyProvider, create_master_key_file
from complaintcore.crypto.suites import suite_named
from complaintcore.domain.events import ComplaintReceived
from complaintcore.events.case_keys import CaseKeys
from complaintcore.events.codec import domain_events, stream_suite
from complaintcore.events.service_keys import BLIND_INDEX, service_key
from complaintcore.events.store import PostgresEventStore
from complaintcore.reference.institutions import InstitutionDirectory
from testsupport import LiveService, free_port, live_service

SUITE = "aes-256-gcm"
PURPOSE = "核对密钥轮换后的可读性"
TIMEOUT_S = 120
EVENTS_CHECKSUM = "SELECT md5(string_agg(t::text, '' ORDER BY position)) FROM events t"
KEY_IDS = """
SELECT key_id, count(*) AS keys FROM (
    SELECT key_id FROM case_keys UNION ALL SELECT key_id FROM service_keys
) AS k GROUP BY key_id
"""
# tqdm's "done/total [" on stderr
BAR_COUNT = re.compile(r"(\d+)/(\d+) \[")


# --- running the command line -------------------------------------------------------------------


def cli_env(database_url: str | None, key_file: Path | None, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "COMPLAINTCORE_MASTER_KEY_FILE", "COMPLAINTCORE_DATA_DIR")
    }
    env["COMPLAINTCORE_LOG_FORMAT"] = "json"
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    if key_file is not None:
        env["COMPLAINTCORE_MASTER_KEY_FILE"] = str(key_file)
    env.update(extra)
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "complaintcore.cli", *args]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command(*args), env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


def rotate(env: dict[str, str], new_key: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(env, "keys", "rotate", "--new-key-file", str(new_key), *extra)


def refusal_line(finished: subprocess.CompletedProcess[str]) -> str:
    """The one `complaintcore:` line of a command that exited 1, without a traceback."""
    assert finished.returncode == 1, (finished.stdout, finished.stderr)
    assert "Traceback" not in finished.stderr
    lines = [line for line in finished.stderr.splitlines() if line.startswith("complaintcore:")]
    assert len(lines) == 1, finished.stderr
    return lines[0]


def serve_refusal(database_url: str, key_file: Path) -> str:
    return refusal_line(run(cli_env(database_url, key_file), "serve", "--port", str(free_port())))


def create_key_with_the_cli(path: Path) -> str:
    finished = run(cli_env(None, None), "keys", "create", str(path))
    assert finished.returncode == 0, finished.stderr
    return FileKeyProvider(path).key_id


# --- the database ------------------------------------------------------------------------------


async def events_checksum(pool: asyncpg.Pool) -> str:
    return await pool.fetchval(EVENTS_CHECKSUM)


async def keys_by_key_id(pool: asyncpg.Pool) -> dict[str, int]:
    return {row["key_id"]: row["keys"] for row in await pool.fetch(KEY_IDS)}


SERVICE_KEYS = 2  # the blind index's and the request fingerprints', made by `serve`


async def add_service_key(pool: asyncpg.Pool, key_file: Path) -> bytes:
    async with pool.acquire() as connection:
        _, key = await service_key(connection, FileKeyProvider(key_file), BLIND_INDEX, SUITE)
    return key


async def add_case_keys(
    pool: asyncpg.Pool, key_file: Path, count: int, prefix: str = "filler"
) -> dict[str, bytes]:
    """`count` case keys under `key_file`'s key, with no events: rows for a rotation to walk."""
    keys = CaseKeys(FileKeyProvider(key_file), suite_named(SUITE))
    made: dict[str, bytes] = {}
    for start in range(0, count, 5_000):
        ids = [f"{prefix}-{n:06}" for n in range(start, min(count, start + 5_000))]
        data_keys = keys.new_data_keys(ids)
        async with pool.acquire() as connection, connection.transaction():
            await keys.store_new(connection, data_keys)
        made.update(data_keys)
    return made


async def unwrapped_under(pool: asyncpg.Pool, key_file: Path, case_ids: list[str]) -> dict:
    keys = CaseKeys(FileKeyProvider(key_file), suite_named(SUITE))
    async with pool.acquire() as connection:
        return await keys.keys_for(connection, case_ids)


async def received_under(pool: asyncpg.Pool, key_file: Path, case_id: str) -> ComplaintReceived:
    """The case's receipt, its personal fields opened with `key_file`'s key."""
    stored = await PostgresEventStore(pool).read_stream(case_id)
    keys = CaseKeys(FileKeyProvider(key_file), suite_named(SUITE))
    async with pool.acquire() as connection:
        cipher = await keys.cipher_for(connection, case_id, stream_suite(stored) or SUITE)
    received = domain_events(stored, cipher)[0]
    assert isinstance(received, ComplaintReceived)
    return received


# --- the live service --------------------------------------------------------------------------


@pytest.fixture
async def tokens(pool: asyncpg.Pool) -> dict[str, str]:
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    return {
        "staff_a": await create_token(pool, "staff-a1", "staff", "BR-A"),
        "regulator": await create_token(pool, "reg-1", "regulator", None),
    }


def serving_with(key_file: Path, folder: Path) -> Path:
    """A folder for `live_service` whose master.key is `key_file` (it serves with that file)."""
    folder.mkdir()
    shutil.copy2(key_file, folder / "master.key")
    return folder


def receive_cases(service: LiveService, count: int) -> list[str]:
    with service.client("staff_a") as staff:
        cases = [receive(staff) for _ in range(count)]
        ok(post(staff, cases[0], "assign", {"handler_id": "staff-a1"}))
        ok(post(staff, cases[0], "decide", decision(days_ago(0))))
    return [case["id"] for case in cases]


def revealed(service: LiveService, case_ids: list[str]) -> dict[str, list[dict]]:
    with service.client("regulator") as regulator:
        return {
            case_id: ok(
                regulator.get(
                    f"/v1/complaints/{case_id}/personal-data", params={"purpose": PURPOSE}
                )
            )["events"]
            for case_id in case_ids
        }


# --- a whole rotation --------------------------------------------------------------------------


async def test_rotation_moves_every_key_keeps_the_events_and_the_cases_readable(
    database_url: str, pool: asyncpg.Pool, tokens: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    with live_service(database_url, tokens, tmp_path / "a") as a:
        case_ids = receive_cases(a, 3)
        before = revealed(a, case_ids)
    old_key = tmp_path / "a" / "master.key"
    old_id = FileKeyProvider(old_key).key_id
    blind_index_key = await add_service_key(pool, old_key)
    new_key = tmp_path / "new.key"
    new_id = create_key_with_the_cli(new_key)
    checksum = await events_checksum(pool)
    assert await keys_by_key_id(pool) == {old_id: 3 + SERVICE_KEYS}

    finished = rotate(cli_env(database_url, old_key), new_key)

    assert finished.returncode == 0, finished.stderr
    assert "Traceback" not in finished.stderr
    assert f"rotating from master key {old_id} ({old_key}) to {new_id} ({new_key})" in (
        finished.stderr
    )
    assert "re-wrapping case keys" in finished.stderr and "3/3" in finished.stderr
    out = finished.stdout
    assert f"re-wrapped 3 case keys and 2 service keys under master key {new_id} ({new_key})" in out
    assert f"every data key is under {new_id} now. Next:" in out
    assert f"1. set COMPLAINTCORE_MASTER_KEY_FILE={new_key} for every complaintcore" in out
    assert "2. restart every running process" in out
    assert f"3. keep the old key file (key {old_id}, {old_key}) until no backup needs it" in out
    assert new_key.read_text().split()[-1] not in finished.stdout + finished.stderr

    assert await events_checksum(pool) == checksum
    assert await keys_by_key_id(pool) == {new_id: 3 + SERVICE_KEYS}
    for case_id in case_ids:
        assert (await received_under(pool, new_key, case_id)).complainant.name == "张三"
    async with pool.acquire() as connection:
        assert await service_key(connection, FileKeyProvider(new_key), BLIND_INDEX, SUITE) == (
            SUITE,
            blind_index_key,
        )

    with live_service(database_url, tokens, serving_with(new_key, tmp_path / "b")) as b:
        assert revealed(b, case_ids) == before
    line = serve_refusal(database_url, old_key)
    assert f"master key file {old_key} holds key {old_id}" in line
    assert new_id in line
    assert "unfinished" not in line

    again = rotate(cli_env(database_url, old_key), new_key)
    assert again.returncode == 0, again.stderr
    assert "re-wrapped 0 case keys and 0 service keys" in again.stdout
    assert await events_checksum(pool) == checksum


# --- killed midway, and run again ----------------------------------------------------------------

FILLER_KEYS = 30_000
SMALL_BATCH = 5
STOP_AFTER_KEYS = 10 * SMALL_BATCH


class StderrReader:
    """Collects a process's stderr on a thread, so the test can watch its progress bar."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stderr is not None
        self._stream = process.stderr
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while chunk := self._stream.read1(4096):  # type: ignore[attr-defined]
            self._chunks.append(chunk)

    def text(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def keys_done(self) -> int:
        return max((int(done) for done, _ in BAR_COUNT.findall(self.text())), default=0)

    def join(self) -> str:
        self._thread.join(timeout=10)
        return self.text()


def stop_once_the_bar_shows(
    env: dict[str, str], new_key: Path, keys: int, stop: signal.Signals
) -> tuple[int, str]:
    """Start the rotation, send it `stop` once its bar shows `keys` re-wrapped by this run; its
    exit status and stderr."""
    process = subprocess.Popen(
        command("keys", "rotate", "--new-key-file", str(new_key), "--batch", str(SMALL_BATCH)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    reader = StderrReader(process)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while reader.keys_done() < keys:
            assert process.poll() is None, f"it ended before it was stopped: {reader.join()}"
            assert time.monotonic() < deadline, reader.text()
            time.sleep(0.02)
        process.send_signal(stop)
        process.wait(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    return process.returncode, reader.join()


# Another backend of the database still working: a COMMIT sent before a SIGKILL is carried out
# after the process is gone, so the keys could still move after `wait` returned.
_BUSY_BACKENDS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'
  AND backend_type = 'client backend'
"""


async def its_backends_settled(pool: asyncpg.Pool) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while await pool.fetchval(_BUSY_BACKENDS):
        assert time.monotonic() < deadline, "a backend of the stopped rotation kept on"
        await asyncio.sleep(0.05)


async def test_a_rotation_stopped_midway_is_named_at_start_up_and_finished_by_running_it_again(
    database_url: str, pool: asyncpg.Pool, tokens: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    with live_service(database_url, tokens, tmp_path / "a") as a:
        case_ids = receive_cases(a, 2)
    old_key = tmp_path / "a" / "master.key"
    old_id = FileKeyProvider(old_key).key_id
    await add_service_key(pool, old_key)
    filler = await add_case_keys(pool, old_key, FILLER_KEYS)
    new_key = tmp_path / "new.key"
    new_id = create_key_with_the_cli(new_key)
    checksum = await events_checksum(pool)
    env = cli_env(database_url, old_key)

    status, stderr = stop_once_the_bar_shows(env, new_key, STOP_AFTER_KEYS, signal.SIGINT)
    assert status == 130, stderr
    assert "Traceback" not in stderr
    assert f"rotation to master key {new_id} interrupted after " in stderr
    assert "run the same command again to finish it" in stderr
    after_ctrl_c = await keys_by_key_id(pool)
    assert after_ctrl_c[new_id] >= STOP_AFTER_KEYS + SERVICE_KEYS  # the batches shown, and those

    status, _ = stop_once_the_bar_shows(env, new_key, STOP_AFTER_KEYS, signal.SIGKILL)
    assert status == -signal.SIGKILL
    await its_backends_settled(pool)

    halfway = await keys_by_key_id(pool)
    assert set(halfway) == {old_id, new_id}, "stopped with keys under both"
    assert halfway[new_id] >= after_ctrl_c[new_id] + STOP_AFTER_KEYS
    for starting_with in (new_key, old_key):
        line = serve_refusal(database_url, starting_with)
        assert (
            f"a rotation to key {new_id} is unfinished: run `complaintcore keys rotate` again"
            in (line)
        )
        assert f"COMPLAINTCORE_MASTER_KEY_FILE: the file of key {old_id}" in line
    third_key = tmp_path / "third.key"
    create_master_key_file(third_key)
    line = refusal_line(rotate(cli_env(database_url, new_key), third_key))
    assert line.startswith(f"complaintcore: a rotation to key {new_id} is unfinished: finish it")
    assert await keys_by_key_id(pool) == halfway

    finished = rotate(env, new_key, "--batch", "1000")

    assert finished.returncode == 0, finished.stderr
    assert f"resuming the rotation from master key {old_id}" in finished.stderr
    left = halfway[old_id]
    assert f"re-wrapped {left} case keys and 0 service keys under master key {new_id}" in (
        finished.stdout
    )
    assert await keys_by_key_id(pool) == {new_id: FILLER_KEYS + len(case_ids) + SERVICE_KEYS}
    assert await events_checksum(pool) == checksum
    assert await unwrapped_under(pool, new_key, list(filler)) == filler
    for case_id in case_ids:
        assert (await received_under(pool, new_key, case_id)).complainant.name == "张三"


# --- refusals ------------------------------------------------------------------------------------


async def test_keys_under_a_key_neither_file_holds_are_refused_and_nothing_moves(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    current, stranger, new = (tmp_path / f"{name}.key" for name in ("current", "stranger", "new"))
    for path in (current, stranger, new):
        create_master_key_file(path)
    await add_case_keys(pool, current, 3)
    await add_case_keys(pool, stranger, 2, prefix="stranger")
    before = await keys_by_key_id(pool)

    line = refusal_line(rotate(cli_env(database_url, current), new))

    stranger_id = FileKeyProvider(stranger).key_id
    assert f"the database has data keys wrapped under {stranger_id}, which neither" in line
    assert str(current) in line and str(new) in line
    assert f"set COMPLAINTCORE_MASTER_KEY_FILE to the file of key {stranger_id}" in line
    assert await keys_by_key_id(pool) == before


async def test_an_altered_key_row_stops_the_rotation_naming_its_case_and_the_remedy(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Every run stops at the row that does not unwrap: it must say which (found by a review
    pass: the line named no case, and serve refused to start until the rotation finished)."""
    old_key, new_key = tmp_path / "old.key", tmp_path / "new.key"
    create_master_key_file(old_key)
    create_master_key_file(new_key)
    await add_case_keys(pool, old_key, 12)
    await pool.execute(
        "UPDATE case_keys SET wrapped = overlay(wrapped placing"
        " set_byte('\\x00'::bytea, 0, get_byte(wrapped, length(wrapped) - 1) # 1)"
        " from length(wrapped)) WHERE case_id = $1",
        "filler-000007",
    )

    line = refusal_line(rotate(cli_env(database_url, old_key), new_key, "--batch", "5"))

    assert "case filler-000007: its data key does not unwrap" in line
    assert "Restore that case's row of case_keys from a backup" in line


def test_a_new_key_file_that_does_not_exist_is_refused_naming_keys_create(
    database_url: str, tmp_path: Path
) -> None:
    current = tmp_path / "current.key"
    create_master_key_file(current)
    missing = tmp_path / "missing.key"

    line = refusal_line(rotate(cli_env(database_url, current), missing))

    assert f"new master key file {missing} does not exist" in line
    assert f"complaintcore keys create {missing}" in line


# --- the embedded default ------------------------------------------------------------------------


@pytest.fixture
def scratch() -> Iterator[Path]:
    """Not pytest's tmp_path: the embedded server runs as another user when we are root."""
    folder = Path(tempfile.mkdtemp(prefix="complaintcore-keys-rotate-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_embedded_default_keeps_its_master_key_file_and_names_the_new_one(
    scratch: Path,
) -> None:
    data_dir = scratch / "pgdata"
    embedded = cli_env(None, None, COMPLAINTCORE_DATA_DIR=str(data_dir))
    seeded = run(embedded, "demo", "--cases", "3")
    assert seeded.returncode == 0, seeded.stderr
    default_key = data_dir.resolve() / "master.key"
    old_id = FileKeyProvider(default_key).key_id
    old_text = default_key.read_bytes()
    new_key = scratch / "new.key"
    new_id = create_key_with_the_cli(new_key)

    finished = rotate(embedded, new_key)

    assert finished.returncode == 0, finished.stderr
    out = " ".join(finished.stdout.split())
    assert f"under master key {new_id} ({new_key})" in out
    assert f"set COMPLAINTCORE_MASTER_KEY_FILE={new_key}" in out
    assert f"{default_key} still holds the old key {old_id} and is left as it is" in out
    assert default_key.read_bytes() == old_text

    refused = refusal_line(run(embedded, "projections", "rebuild", "--workers", "1"))
    assert f"{default_key} holds key {old_id}" in refused and new_id in refused
    with_new_key = {**embedded, "COMPLAINTCORE_MASTER_KEY_FILE": str(new_key)}
    rebuilt = run(with_new_key, "projections", "rebuild", "--workers", "1")
    assert rebuilt.returncode == 0, rebuilt.stderr
