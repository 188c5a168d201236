"""`complaintcore import` run as operations staff run it (a subprocess on a real
PostgreSQL): its outcome must not depend on the batch size, nor fail after committing."""

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from api_support import TODAY, complaint
from complaintcore.reference.institutions import InstitutionDirectory
from testsupport import command_env

STAFF = {"id": "staff-a1", "role": "staff", "institution": "BR-A"}


def days_ago(n: int) -> str:
    return (TODAY - timedelta(days=n)).isoformat()


def case_line(external_id: str, received_days_ago: int, actions: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {
            "external_id": external_id,
            **complaint("BR-A", received_days_ago),
            "actor": STAFF,
            "actions": actions,
        }
    )


def assign(days: int) -> dict[str, Any]:
    return {"command": "assign", "at": days_ago(days), "handler_id": "staff-a1"}


def merge_into(external_id: str, days: int, **extra: Any) -> dict[str, Any]:
    return {"command": "merge", "at": days_ago(days), "into_external_id": external_id, **extra}


@pytest.fixture
async def institutions(pool: asyncpg.Pool) -> None:
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")


async def run_import(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "complaintcore.cli", "import", *args],
        env=command_env(database_url),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_a_second_line_with_the_same_external_id_is_refused_whatever_the_batch_size(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path, institutions: None
) -> None:
    """Two different cases under one external id in one file: with the default batch the second
    is refused (`duplicate_external_id`, exit 2); with `--batch 1` it must be too, not dropped
    silently as "already stored" with exit 0."""
    source = tmp_path / "cases.jsonl"
    source.write_bytes(
        case_line("DUP-1", 12, [assign(11)]) + b"\n" + case_line("DUP-1", 5, []) + b"\n"
    )

    result = await run_import(database_url, str(source), "--batch", "1")

    assert "duplicate_external_id" in result.stderr, (result.returncode, result.stdout)
    assert result.returncode == 2, result.stdout


async def test_an_unwritable_refusals_path_fails_before_importing_or_not_at_all(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path, institutions: None
) -> None:
    """`--refusals` in a missing folder: refused in one line before anything is imported (it
    was a traceback and exit 1, "unreadable", after the cases were stored)."""
    source = tmp_path / "cases.jsonl"
    refused = {"command": "decide", "at": days_ago(1), "handler_id": "staff-a1"}  # unassigned
    source.write_bytes(case_line("R-1", 10, [refused]) + b"\n" + case_line("R-2", 10, []) + b"\n")

    result = await run_import(
        database_url, str(source), "--refusals", str(tmp_path / "missing" / "refusals.jsonl")
    )

    stored = await pool.fetchval("SELECT count(*) FROM case_view")
    assert "Traceback" not in result.stderr, result.stderr[-600:]
    assert (result.returncode, stored) == (1, 0)
    assert "--refusals" in result.stderr and len(result.stderr.strip().splitlines()) == 1


async def test_rerunning_a_fixed_file_imports_a_merge_into_a_case_stored_by_the_first_run(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path, institutions: None
) -> None:
    """The operator's loop: import, fix the refused line, run the same command again. The
    merge's target (line 1) was stored by the first run and is earlier in the file, so the
    fixed line 2 must import (it does with `--batch 1`, not with the default batch)."""
    target = case_line("TGT-1", 20, [])
    source = tmp_path / "cases.jsonl"
    source.write_bytes(target + b"\n" + case_line("SRC-1", 15, [merge_into("TGT-1", 10, x=1)]))
    first = await run_import(database_url, str(source))
    assert first.returncode == 2 and "line 2 (SRC-1): validation_failed" in first.stderr

    source.write_bytes(target + b"\n" + case_line("SRC-1", 15, [merge_into("TGT-1", 10)]))
    again = await run_import(database_url, str(source))

    assert again.returncode == 0, [line for line in again.stderr.splitlines() if "refused" in line]
    assert "1 cases imported (2 events), 1 already stored, 0 refused" in again.stdout


UNASSIGNED_DECISION = {"command": "decide", "at": days_ago(1), "handler_id": "staff-a1"}


async def test_the_refusals_file_holds_each_refused_line_and_the_run_ends_with_its_summary(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path, institutions: None
) -> None:
    """A writable `--refusals`: it was closed before it was written (a traceback and exit 1,
    "unreadable", after the cases were stored, the file left as it was)."""
    source = tmp_path / "cases.jsonl"
    source.write_bytes(
        case_line("R-1", 10, [UNASSIGNED_DECISION]) + b"\n" + case_line("R-2", 10, []) + b"\n"
    )
    out = tmp_path / "refusals.jsonl"
    out.write_text("a stale line from the run before, longer than what replaces it\n")

    result = await run_import(database_url, str(source), "--refusals", str(out))

    assert "Traceback" not in result.stderr, result.stderr[-600:]
    assert result.returncode == 2, result.stderr[-600:]
    assert "1 cases imported (1 events), 0 already stored, 1 refused" in result.stdout
    refusals = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(r["line_number"], r["external_id"]) for r in refusals] == [(1, "R-1")]


async def test_a_refused_line_keeps_its_external_id_from_a_later_line_and_its_fix_imports(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path, institutions: None
) -> None:
    """Line 2 repeats line 1's external id: refused as given twice even when line 1 itself is
    refused (it was stored instead, and the fixed line 1 then never imported)."""
    source = tmp_path / "cases.jsonl"
    later = case_line("DUPX", 5, [])
    source.write_bytes(case_line("DUPX", 12, [UNASSIGNED_DECISION]) + b"\n" + later + b"\n")

    first = await run_import(database_url, str(source))
    assert first.returncode == 2, first.stderr[-600:]
    assert "line 2 (DUPX): duplicate_external_id" in first.stderr
    assert await pool.fetchval("SELECT count(*) FROM case_view") == 0

    source.write_bytes(case_line("DUPX", 12, [assign(11)]) + b"\n" + later + b"\n")
    second = await run_import(database_url, str(source))

    assert second.returncode == 2, second.stderr[-600:]
    assert "1 cases imported" in second.stdout
    received = await pool.fetchval("SELECT received_on FROM case_view")
    assert received.isoformat() == days_ago(12)


async def test_an_external_id_that_is_no_code_is_not_repeated_in_the_refusal(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path, institutions: None
) -> None:
    """Typed in the wrong column, an external id may be a name and an identity number."""
    source = tmp_path / "cases.jsonl"
    typed_wrong = "张三 11010519491231002X"
    source.write_bytes(case_line(typed_wrong, 10, []) + b"\n")

    result = await run_import(database_url, str(source))

    assert result.returncode == 2, result.stderr[-600:]
    assert "line 1: validation_failed" in result.stderr
    assert "张三" not in result.stderr and "11010519491231002X" not in result.stderr


async def test_refusals_into_the_file_being_imported_are_refused_before_anything(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path, institutions: None
) -> None:
    """Found by a review pass: `--refusals` naming the imported file (by another path too)
    replaced its cases by their refusals."""
    source = tmp_path / "cases.jsonl"
    content = case_line("S-1", 10, []) + b"\n"
    source.write_bytes(content)
    (tmp_path / "alias.jsonl").symlink_to(source)

    for out in (source, tmp_path / "alias.jsonl"):
        result = await run_import(database_url, str(source), "--refusals", str(out))
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().endswith("is the file being imported")
    assert source.read_bytes() == content
    assert await pool.fetchval("SELECT count(*) FROM case_view") == 0
