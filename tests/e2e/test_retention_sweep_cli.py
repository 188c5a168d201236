"""`complaintcore personal-data sweep` as an operator runs it (TARGETS.md "Erasure": "a sweep
killed midway resumes; no case is ever left with its key destroyed but no PersonalDataErased
event, or the reverse").

3,000 cases closed in 2019 are imported through the real bulk writer (`complaintcore import`).
A dry run lists them all and writes nothing; a sweep under another master key refuses; a sweep
killed with SIGKILL once its progress bar shows a first batch leaves every case either erased
whole (no key, one erasure event, view row erased) or held whole (key, no erasure event, view row
held); the same command again erases exactly the rest. Ctrl-C (SIGINT) ends it after the batch
in hand has committed: exit 130, the cases erased named, the rest erased by the same command.
"""

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from complaintcore.application import retention_sweep
from complaintcore.cli.parsers import personal_data as sweep_parser
from complaintcore.events.hashing import verify_chain
from complaintcore.events.store import PostgresEventStore
from testsupport import command_env, master_key_env, withdrawn_cases_imported

CASES = 3_000
KILL_BATCH = 20  # small batches, so that the kill lands between many commits
PROGRESS = re.compile(rb"erasing:[^|\r\n]*\|[^|\r\n]*\|\s*(\d+)/(\d+)")
SWEEP = [sys.executable, "-m", "complaintcore.cli", "personal-data", "sweep"]


def run(arguments: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(arguments, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
async def old_cases(database_url: str, pool: asyncpg.Pool, tmp_path: Path) -> list[str]:
    """`CASES` cases withdrawn in 2019, imported; their ids."""
    await withdrawn_cases_imported(pool, database_url, tmp_path, CASES, timeout_s=300)
    rows = await pool.fetch("SELECT case_id FROM case_view ORDER BY case_id")
    assert len(rows) == CASES
    return [row["case_id"] for row in rows]


async def case_states(pool: asyncpg.Pool) -> dict[str, tuple[bool, int, str]]:
    """Each case's (has a key, erasure events, view row's personal data)."""
    rows = await pool.fetch(
        """
        SELECT v.case_id,
               EXISTS (SELECT 1 FROM case_keys AS k WHERE k.case_id = v.case_id) AS keyed,
               (SELECT count(*) FROM events AS e
                WHERE e.stream_id = v.case_id AND e.event_type = 'PersonalDataErased') AS erasures,
               v.personal_data
        FROM case_view AS v
        """
    )
    return {row["case_id"]: (row["keyed"], row["erasures"], row["personal_data"]) for row in rows}


HELD = (True, 0, "held")
ERASED = (False, 1, "erased")


def stopped_after_first_batch(process: subprocess.Popen[bytes], stop: signal.Signals) -> bytes:
    """Read the sweep's stderr until its bar shows cases done, then send it `stop`: what it
    wrote, to its end."""
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stderr], [], [], 0.05)
        if ready:
            chunk = os.read(process.stderr.fileno(), 65536)
            if not chunk:
                break  # it ended before showing any progress
            seen += chunk
            if any(int(done) > 0 for done, _ in PROGRESS.findall(seen)):
                break
    process.send_signal(stop)
    process.wait(timeout=60)
    return seen + process.stderr.read()


@pytest.fixture
def sweeping(database_url: str, old_cases: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """The sweep in small batches, started once the cases are stored."""
    process = subprocess.Popen(
        [*SWEEP, "--batch", str(KILL_BATCH)],
        env=command_env(database_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_the_parsers_defaults_are_the_sweeps() -> None:
    assert sweep_parser.DEFAULT_BATCH_CASES == retention_sweep.DEFAULT_BATCH_CASES
    assert sweep_parser.DEFAULT_REASON == retention_sweep.DEFAULT_REASON
    assert sweep_parser.DEFAULT_LEGAL_BASIS == retention_sweep.DEFAULT_LEGAL_BASIS
    assert sweep_parser.DEFAULT_ACTOR == retention_sweep.DEFAULT_ACTOR


async def test_a_sweep_killed_midway_leaves_no_case_half_erased_and_resumes(
    database_url: str,
    pool: asyncpg.Pool,
    old_cases: list[str],
    sweeping: subprocess.Popen[bytes],
) -> None:
    killed_output = stopped_after_first_batch(sweeping, signal.SIGKILL)

    assert sweeping.returncode == -signal.SIGKILL, killed_output.decode(errors="replace")
    after_kill = await case_states(pool)
    assert set(after_kill.values()) <= {HELD, ERASED}
    erased_before_the_kill = sum(state == ERASED for state in after_kill.values())
    assert 0 < erased_before_the_kill < CASES
    assert erased_before_the_kill % KILL_BATCH == 0  # whole batches only

    resumed = run(SWEEP, command_env(database_url))

    assert resumed.returncode == 0, resumed.stderr
    left = CASES - erased_before_the_kill
    assert f"erased {left:,} cases as of " in resumed.stdout
    assert "none left held" in resumed.stdout
    assert set((await case_states(pool)).values()) == {ERASED}
    store = PostgresEventStore(pool)
    for case_id in old_cases[:: CASES // 50]:
        events = await store.read_stream(case_id)
        assert verify_chain(events).intact and events[-1].event_type == "PersonalDataErased"
    assert "张三" not in resumed.stdout + resumed.stderr
    rate = re.search(r"\(([\d,]+) cases/s\)", resumed.stdout)
    assert rate is not None, resumed.stdout
    print(f"\nresumed sweep: {resumed.stdout.strip()}")


async def test_a_sweep_stopped_with_ctrl_c_ends_after_a_whole_batch_and_resumes(
    database_url: str,
    pool: asyncpg.Pool,
    old_cases: list[str],
    sweeping: subprocess.Popen[bytes],
) -> None:
    stderr = stopped_after_first_batch(sweeping, signal.SIGINT).decode(errors="replace")

    assert sweeping.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    after_ctrl_c = await case_states(pool)
    assert set(after_ctrl_c.values()) <= {HELD, ERASED}
    erased = sum(state == ERASED for state in after_ctrl_c.values())
    assert 0 < erased < CASES
    assert erased % KILL_BATCH == 0  # the batch in hand committed, no further one begun
    assert (
        f"sweep interrupted after {erased:,} cases erased; every case is erased whole or still"
        " held: run the same command again to resume"
    ) in stderr

    resumed = run(SWEEP, command_env(database_url))

    assert resumed.returncode == 0, resumed.stderr
    assert f"erased {CASES - erased:,} cases as of " in resumed.stdout
    assert set((await case_states(pool)).values()) == {ERASED}


async def test_a_dry_run_lists_every_case_due_and_another_master_key_is_refused(
    database_url: str, pool: asyncpg.Pool, old_cases: list[str], tmp_path: Path
) -> None:
    before = await case_states(pool)

    dry = run([*SWEEP, "--dry-run"], command_env(database_url))
    wrong_key = run(SWEEP, command_env(database_url, **master_key_env(tmp_path)))
    in_the_future = run([*SWEEP, "--on", "2999-01-01"], command_env(database_url))

    assert dry.returncode == 0, dry.stderr
    listed, summary = dry.stdout.splitlines()[:-1], dry.stdout.splitlines()[-1]
    assert sorted(listed) == old_cases
    assert summary.startswith(f"would erase {CASES:,} cases as of ")
    assert wrong_key.returncode == 1
    assert "complaintcore: master key file" in wrong_key.stderr
    assert in_the_future.returncode == 1 and "is after today" in in_the_future.stderr
    assert await case_states(pool) == before == dict.fromkeys(old_cases, HELD)
