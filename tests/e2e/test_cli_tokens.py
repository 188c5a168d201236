"""`complaintcore tokens list` and `tokens revoke` (issue 16, operators' basics): an operator
names a token by its fingerprint, never sees it again, and a revoked token stops working."""

import asyncio
import os
import subprocess
import sys

import asyncpg

from api_support import app_client
from complaintcore.auth.tokens import FINGERPRINT_LENGTH, hash_token
from complaintcore.reference.institutions import InstitutionDirectory


async def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "COMPLAINTCORE_LOG_FORMAT": "json"}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "complaintcore.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def created(database_url: str, principal: str, role: str, institution: str) -> str:
    result = await cli(
        database_url, "tokens", "create", "--id", principal, "--role", role,
        "--institution", institution,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def listed(result: subprocess.CompletedProcess[str]) -> list[list[str]]:
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split("\t") == [
        "fingerprint", "principal", "role", "institution", "created", "revoked"
    ]  # fmt: skip
    return [line.split("\t") for line in lines]


async def status_with(database_url: str, token: str) -> int:
    async with app_client(database_url) as client:
        headers = {"Authorization": f"Bearer {token}"}
        return (await client.get("/v1/institutions/BR-A", headers=headers)).status_code


async def test_tokens_are_listed_by_fingerprint_and_revoked_one_or_all(
    database_url: str, pool: asyncpg.Pool
) -> None:
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    first = await created(database_url, "staff-a1", "staff", "BR-A")
    second = await created(database_url, "staff-a1", "staff", "BR-A")
    other = await created(database_url, "sup-a1", "supervisor", "BR-A")

    rows = listed(await cli(database_url, "tokens", "list"))
    fingerprints = {hash_token(t)[:FINGERPRINT_LENGTH] for t in (first, second, other)}
    assert {row[0] for row in rows} == fingerprints
    assert [row[1:4] for row in rows].count(["staff-a1", "staff", "BR-A"]) == 2
    assert all(row[5] == "-" for row in rows)
    shown = (await cli(database_url, "tokens", "list", "--all")).stdout
    assert not any(token in shown for token in (first, second, other))

    one = hash_token(first)[:FINGERPRINT_LENGTH]
    revoked = await cli(database_url, "tokens", "revoke", "--fingerprint", one)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith(one)
    assert await status_with(database_url, first) == 401
    assert await status_with(database_url, second) == 200
    again = await cli(database_url, "tokens", "revoke", "--fingerprint", one)
    assert again.returncode == 1 and "revoked already" in again.stderr

    everyone = await cli(database_url, "tokens", "revoke", "--id", "staff-a1")
    assert everyone.returncode == 0, everyone.stderr
    assert everyone.stdout.strip() == "1 token(s) of staff-a1 revoked"
    assert await status_with(database_url, second) == 401
    assert await status_with(database_url, other) == 200
    assert [row[1] for row in listed(await cli(database_url, "tokens", "list"))] == ["sup-a1"]
    assert len(listed(await cli(database_url, "tokens", "list", "--all"))) == 3


async def test_a_fingerprint_must_name_exactly_one_token(database_url: str) -> None:
    unknown = await cli(database_url, "tokens", "revoke", "--fingerprint", "abcdef012345")
    assert unknown.returncode == 1 and "no token match" in unknown.stderr
    malformed = await cli(database_url, "tokens", "revoke", "--fingerprint", "XYZ")
    assert malformed.returncode == 1 and "hex digits" in malformed.stderr
    nobody = await cli(database_url, "tokens", "revoke", "--id", "nobody")
    assert nobody.returncode == 1 and "no active token" in nobody.stderr
