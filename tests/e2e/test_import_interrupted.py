"""`complaintcore import` stopped with Ctrl-C (SIGINT) as an operator stops it: it ends once the
batch in hand has committed, with exit status 130 and a line saying how many cases were stored;
every case stored is whole (its events and its key), and the same command again imports exactly
the rest, skipping the cases stored."""

import re
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg

from testsupport import command_env, stopped_once, withdrawn_cases_file

CASES = 6_000  # about three seconds of import here: the signal lands midway
BATCH = 50
EVENTS_A_CASE = 2  # received, withdrawn
TIMEOUT_S = 120


def import_command(source: Path) -> list[str]:
    return [sys.executable, "-m", "complaintcore.cli", "import", str(source), "--batch", str(BATCH)]


async def stored_cases(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM case_view")


async def test_an_import_stopped_with_ctrl_c_stores_whole_cases_and_the_same_command_finishes(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    source = await withdrawn_cases_file(pool, tmp_path / "cases.jsonl", CASES)
    process = subprocess.Popen(
        import_command(source),
        env=command_env(database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stderr = await stopped_once(
            pool,
            process,
            "SELECT count(*) > 0 FROM case_view",  # a batch committed
            lambda: process.send_signal(signal.SIGINT),
            TIMEOUT_S,
        )
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
