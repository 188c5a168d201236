"""A case's key row altered in the key id its wrapped bytes carry (one byte of the first 18
changed: bit rot, a hand edit, `wrapped` restored from another copy without its `key_id` column),
its events untouched, the service's master key the current one: no rotation.

README "Personal data", *A key row damaged*: the case's document, commands and reveal answer 409
`case_key_unusable`, its audit still verifies the chain, and `keys rotate` stops at its row
naming the case. Found by a review pass: a flip in the header was read as a master key rotation
(503 `master_key_rotated`, a log sending the operator to restart with a new key file that does
not exist, the audit refused, the rotation stopping without naming the case)."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from api_support import app_client, complaint
from complaintcore.crypto.keys import create_master_key_file
from projection_support import tree_and_tokens
from testsupport import session_master_key_file

# byte 2 of the wrapped key is the first character of the key id that wrapped it
ALTER_KEY_ID_BYTE = (
    "UPDATE case_keys SET wrapped = set_byte(wrapped, 2, get_byte(wrapped, 2) # 1)"
    " WHERE case_id = $1"
)


@pytest.fixture
async def damaged(database_url: str, pool: asyncpg.Pool) -> tuple[str, dict[str, dict]]:
    tokens = await tree_and_tokens(
        database_url,
        {"staff": ("staff-a1", "staff", "BR-A"), "regulator": ("reg-1", "regulator", None)},
    )
    headers = {role: {"Authorization": f"Bearer {token}"} for role, token in tokens.items()}
    async with app_client(database_url) as client:
        created = await client.post("/v1/complaints", json=complaint(), headers=headers["staff"])
        assert created.status_code == 201, created.text
        case_id = created.json()["id"]
    assert await pool.execute(ALTER_KEY_ID_BYTE, case_id) == "UPDATE 1"
    return case_id, headers


async def _answers(database_url: str, *requests: tuple) -> list[httpx.Response]:
    async with app_client(database_url) as client:  # nothing of the case cached
        return [
            await client.request(method, path, headers=headers, **options)
            for method, path, headers, options in requests
        ]


async def test_a_header_altered_row_is_case_key_unusable_not_a_rotation(
    database_url: str, pool: asyncpg.Pool, damaged
) -> None:
    case_id, headers = damaged
    case = f"/v1/complaints/{case_id}"
    document, command, reveal, audit = await _answers(
        database_url,
        ("GET", case, headers["staff"], {}),
        ("POST", f"{case}/assign", headers["staff"], {"json": {"handler_id": "staff-a1"}}),
        ("GET", f"{case}/personal-data", headers["regulator"], {"params": {"purpose": "核对"}}),
        ("GET", f"{case}/audit", headers["regulator"], {}),
    )
    got = [(r.status_code, r.json().get("code")) for r in (document, command, reveal)]
    assert got == [(409, "case_key_unusable")] * 3, got
    assert audit.status_code == 200, audit.text
    assert audit.json()["chain"]["intact"] is True


async def test_the_rotation_stops_at_the_header_altered_row_naming_its_case(
    database_url: str, damaged, tmp_path: Path
) -> None:
    case_id, _ = damaged
    new_key = tmp_path / "new.key"
    create_master_key_file(new_key)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DATABASE_URL=database_url, COMPLAINTCORE_MASTER_KEY_FILE=str(session_master_key_file())
    )
    finished = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "complaintcore.cli",
            "keys",
            "rotate",
            "--new-key-file",
            str(new_key),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 1, finished.stderr[-2000:]
    line = [x for x in finished.stderr.splitlines() if x.startswith("complaintcore:")][-1]
    assert f"case {case_id}" in line, line


async def test_the_audit_of_a_header_altered_row_still_verifies_the_chain(
    database_url: str, damaged
) -> None:
    case_id, headers = damaged
    (audit,) = await _answers(
        database_url, ("GET", f"/v1/complaints/{case_id}/audit", headers["regulator"], {})
    )
    assert audit.status_code == 200, audit.text
    assert audit.json()["chain"]["intact"] is True and audit.json()["state"] is None
