"""`complaintcore projections rebuild` stopped with Ctrl-C as a terminal sends it (SIGINT to the
whole process group: the command and its scan workers): it stops once the batches in hand have
committed, exits 130 with a line saying how to resume, and the same command again resumes the
scan where it stopped (not from the start) and swaps in tables equal to the ones the import
wrote."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg

from testsupport import command_env, stopped_once, withdrawn_cases_imported

CASES = 6_000
BATCH = 20  # cases a COPY batch: many commits, so that the signal lands between them
TIMEOUT_S = 180


def rebuild(*args: str) -> list[str]:
    return [sys.executable, "-m", "complaintcore.cli", "projections", "rebuild", *args]


async def table(pool: asyncpg.Pool, name: str) -> list[asyncpg.Record]:
    return await pool.fetch(f"SELECT * FROM {name} ORDER BY case_id")


async def test_a_rebuild_stopped_with_ctrl_c_resumes_where_it_stopped(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await withdrawn_cases_imported(pool, database_url, tmp_path, CASES, TIMEOUT_S)
    env = command_env(database_url)
    case_view_as_imported = await table(pool, "case_view")

    process = subprocess.Popen(
        rebuild("--restart", "--batch", str(BATCH)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        stderr = await stopped_once(
            pool,
            process,
            "SELECT coalesce(sum(events_done), 0) > 0 FROM projection_rebuild_partitions",
            lambda: os.killpg(process.pid, signal.SIGINT),  # as a terminal's Ctrl-C
            TIMEOUT_S,
            # a batch commits with its range's progress: none more while we look and signal
            hold="LOCK TABLE projection_rebuild_partitions IN SHARE MODE",
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert "rebuild interrupted; run the same command again to resume" in stderr
    scanned = await pool.fetch(
        "SELECT r.name, r.phase, r.events_total, sum(p.events_done) AS events_done"
        " FROM projection_rebuilds AS r JOIN projection_rebuild_partitions AS p USING (name)"
        " GROUP BY r.name, r.phase, r.events_total ORDER BY r.name"
    )
    assert [row["name"] for row in scanned] == ["case_view", "statistics"]
    assert all(row["phase"] == "scan" for row in scanned)
    assert all(0 < row["events_done"] < row["events_total"] for row in scanned)

    resumed = subprocess.run(
        rebuild("--batch", str(BATCH)), env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )

    assert resumed.returncode == 0, resumed.stderr
    assert "case_view: rebuilt (resumed)" in resumed.stdout
    assert "statistics: rebuilt (resumed)" in resumed.stdout
    assert await pool.fetchval("SELECT count(*) FROM projection_rebuilds") == 0
    assert await table(pool, "case_view") == case_view_as_imported
    assert await pool.fetchval("SELECT count(*) FROM case_statistics") == CASES
