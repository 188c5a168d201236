"""`complaintcore projections rebuild` stopped with Ctrl-C as a terminal sends it (SIGINT to the
whole process group: the command and its scan workers): it stops once the batches in hand have
committed, exits 130 with a line saying how to resume, and the same command again resumes the
scan where it stopped (not from the start) and swaps in tables equal to the ones the import
wrote."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from complaintcore.reference.institutions import InstitutionDirectory
from testsupport import withdrawn_case_line

CASES = 6_000
BATCH = 20  # cases a COPY batch: many commits, so that the signal lands between them
TIMEOUT_S = 180


def command_env(database_url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "COMPLAINTCORE_LOG_FORMAT": "json"}


def rebuild(*args: str) -> list[str]:
    return [sys.executable, "-m", "complaintcore.cli", "projections", "rebuild", *args]


async def ctrl_c_once_a_batch_is_in(pool: asyncpg.Pool, process: subprocess.Popen[str]) -> str:
    """Once the scan has committed a batch, send SIGINT to the rebuild's process group as a
    terminal's Ctrl-C does; its stderr, to its end."""
    deadline = time.monotonic() + TIMEOUT_S
    while not await pool.fetchval(
        "SELECT coalesce(sum(events_done), 0) > 0 FROM projection_rebuild_partitions"
    ):
        assert process.poll() is None, "it ended before it was stopped"
        assert time.monotonic() < deadline, "no batch committed in time"
        await asyncio.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=TIMEOUT_S)
    return stderr


async def table(pool: asyncpg.Pool, name: str) -> list[asyncpg.Record]:
    return await pool.fetch(f"SELECT * FROM {name} ORDER BY case_id")


async def test_a_rebuild_stopped_with_ctrl_c_resumes_where_it_stopped(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    source = tmp_path / "cases.jsonl"
    source.write_bytes(b"\n".join(withdrawn_case_line(n) for n in range(CASES)) + b"\n")
    env = command_env(database_url)
    imported = subprocess.run(
        [sys.executable, "-m", "complaintcore.cli", "import", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert imported.returncode == 0, imported.stderr
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
        stderr = await ctrl_c_once_a_batch_is_in(pool, process)
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
