"""`complaintcore import` stopped with Ctrl-C (SIGINT) as an operator stops it: it ends once the
batch in hand has committed, with exit status 130 and a line saying how many cases were stored;
every case stored is whole (its events and its key), and the same command again imports exactly
the rest, skipping the cases stored."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from complaintcore.reference.institutions import InstitutionDirectory
from testsupport import withdrawn_case_line

CASES = 6_000  # about three seconds of import here: the signal lands midway
BATCH = 50
EVENTS_A_CASE = 2  # received, withdrawn
TIMEOUT_S = 120


def import_command(source: Path) -> list[str]:
    return [sys.executable, "-m", "complaintcore.cli", "import", str(source), "--batch", str(BATCH)]


def command_env(database_url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "COMPLAINTCORE_LOG_FORMAT": "json"}


async def stored_cases(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM case_view")


async def interrupted_once_cases_are_stored(
    pool: asyncpg.Pool, process: subprocess.Popen[str]
) -> str:
    """Send SIGINT once the import has committed a batch; its stderr, to its end."""
    deadline = time.monotonic() + TIMEOUT_S
    while await stored_cases(pool) == 0:
        assert process.poll() is None, "it ended before it was stopped"
        assert time.monotonic() < deadline, "no batch committed in time"
        await asyncio.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=TIMEOUT_S)
    return stderr


async def test_an_import_stopped_with_ctrl_c_stores_whole_cases_and_the_same_command_finishes(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    source = tmp_path / "cases.jsonl"
    source.write_bytes(b"\n".join(withdrawn_case_line(n) for n in range(CASES)) + b"\n")
    process = subprocess.Popen(
        import_command(source),
        env=command_env(database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stderr = await interrupted_once_cases_are_stored(pool, process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    stored = await stored_cases(pool)
    assert 0 < stored < CASES
    told = re.search(r"import interrupted after (\d+) cases imported \((\d+) events\)", stderr)
    assert told is not None, stderr
    assert (int(told[1]), int(told[2])) == (stored, stored * EVENTS_A_CASE)
    assert "run the same command again to import the rest" in stderr
    events_by_case = await pool.fetch(
        "SELECT count(*) AS events, bool_and(EXISTS (SELECT 1 FROM case_keys AS k"
        " WHERE k.case_id = e.stream_id)) AS keyed FROM events AS e GROUP BY stream_id"
    )
    assert len(events_by_case) == stored
    assert all(row["events"] == EVENTS_A_CASE and row["keyed"] for row in events_by_case)

    finished = subprocess.run(
        import_command(source),
        env=command_env(database_url),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )

    assert finished.returncode == 0, finished.stderr
    assert (
        f"{CASES - stored} cases imported ({(CASES - stored) * EVENTS_A_CASE} events),"
        f" {stored} already stored, 0 refused"
    ) in finished.stdout
    assert await stored_cases(pool) == CASES
