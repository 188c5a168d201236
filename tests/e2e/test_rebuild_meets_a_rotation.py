"""A `projections rebuild` that meets a `keys rotate` committed after its start-up key check: its
master key can no longer unwrap the re-wrapped data keys, and like every other key refusal of
the command line it stops with one `complaintcore:` line naming the rotation, not a traceback
(found by a review pass)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg

from complaintcore.crypto.keys import create_master_key_file
from testsupport import command_env, session_master_key_file, withdrawn_cases_imported

TIMEOUT_S = 180

# `projections rebuild` run as the CLI runs it, with `keys rotate` run (to completion) right
# after the rebuild's own key check passed: as a rotation started meanwhile on the admin host.
REBUILD_WHILE_ROTATING = textwrap.dedent(
    """
    import subprocess, sys
    import complaintcore.cli.projections as projections
    from complaintcore.cli.main import main

    checked = projections._case_keys

    async def checked_then_rotated(pool, settings):
        case_keys = await checked(pool, settings)
        rotated = subprocess.run(
            [sys.executable, "-m", "complaintcore.cli", "keys", "rotate", "--new-key-file",
             sys.argv[1]], capture_output=True, text=True)
        assert rotated.returncode == 0, rotated.stderr
        return case_keys

    projections._case_keys = checked_then_rotated
    sys.exit(main(["projections", "rebuild", "case_view", "--restart", "--workers", "1"]))
    """
)


async def test_a_rebuild_meeting_a_rotation_refuses_in_one_line(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await withdrawn_cases_imported(pool, database_url, tmp_path, 20, TIMEOUT_S)
    env = command_env(database_url)
    new_key = tmp_path / "new.key"
    new_id = create_master_key_file(new_key)
    assert env["COMPLAINTCORE_MASTER_KEY_FILE"] == str(session_master_key_file())

    finished = subprocess.run(
        [sys.executable, "-c", REBUILD_WHILE_ROTATING, str(new_key)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )

    assert await pool.fetchval("SELECT count(*) FROM case_keys WHERE key_id <> $1", new_id) == 0
    assert "Traceback" not in finished.stderr, finished.stderr[-3000:]
    assert finished.returncode == 1, finished.stderr[-3000:]
    lines = [line for line in finished.stderr.splitlines() if line.startswith("complaintcore:")]
    assert len(lines) == 1 and new_id in lines[0], finished.stderr[-3000:]
