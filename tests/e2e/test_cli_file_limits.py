"""The files the command line is given (`institutions load`, `calendar load`, `import`), run as an
operator runs them: a subprocess over a real PostgreSQL database. A file nested too deeply, a
device, a FIFO or a file over `COMPLAINTCORE_MAX_FILE_BYTES` is refused promptly with one line
on stderr naming the file, and exit status 1 (never a traceback, never a hang)."""

import asyncio
import codecs
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

TIMEOUT_S = 60
COMMANDS = {
    "institutions": ("institutions", "load"),
    "calendar": ("calendar", "load"),
    "import": ("import",),
}
TREE = [
    {"code": "HO", "name": "总行", "kind": "head_office", "parent": None},
    {"code": "BR-A", "name": "上海分行", "kind": "branch", "parent": "HO"},
]


async def run_cli(
    database_url: str, *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The command's result; a command still running after `TIMEOUT_S` fails the test."""
    environment = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    environment.update(DATABASE_URL=database_url, COMPLAINTCORE_LOG_FORMAT="json", **(env or {}))
    command = [sys.executable, "-m", "complaintcore.cli", *map(str, args)]
    try:
        return await asyncio.to_thread(
            subprocess.run,
            command,
            env=environment,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(command[3:])} still ran after {TIMEOUT_S} s")


def assert_refused_in_one_line(result: subprocess.CompletedProcess[str], path: Path) -> str:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"complaintcore: {path}: "), lines[0]
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize("command", ["institutions", "calendar"])
async def test_json_nested_100000_deep_is_refused_in_one_line(
    module_database_url: str, tmp_path: Path, command: str
) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = await run_cli(module_database_url, *COMMANDS[command], deep)
    assert "nested too deeply" in assert_refused_in_one_line(result, deep)


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_symlink_to_dev_zero_is_refused_promptly(
    module_database_url: str, tmp_path: Path, command: str
) -> None:
    link = tmp_path / ("zero.jsonl" if command == "import" else "zero.json")
    link.symlink_to("/dev/zero")
    result = await run_cli(module_database_url, *COMMANDS[command], link)
    assert "character device, not a regular file" in assert_refused_in_one_line(result, link)


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_fifo_is_refused_without_waiting_for_a_writer(
    module_database_url: str, tmp_path: Path, command: str
) -> None:
    fifo = tmp_path / ("pipe.jsonl" if command == "import" else "pipe.csv")
    os.mkfifo(fifo)
    result = await run_cli(module_database_url, *COMMANDS[command], fifo)
    assert "FIFO, not a regular file" in assert_refused_in_one_line(result, fifo)


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_directory_is_refused(
    module_database_url: str, tmp_path: Path, command: str
) -> None:
    folder = tmp_path / ("cases.jsonl" if command == "import" else "tree.json")
    folder.mkdir()
    result = await run_cli(module_database_url, *COMMANDS[command], folder)
    assert "directory, not a regular file" in assert_refused_in_one_line(result, folder)


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_file_over_the_size_limit_is_refused_naming_the_limit(
    module_database_url: str, tmp_path: Path, command: str
) -> None:
    big = tmp_path / ("big.jsonl" if command == "import" else "big.json")
    big.write_text(json.dumps(TREE * 40))
    assert big.stat().st_size > 1024
    result = await run_cli(
        module_database_url,
        *COMMANDS[command],
        big,
        env={"COMPLAINTCORE_MAX_FILE_BYTES": "1024"},
    )
    line = assert_refused_in_one_line(result, big)
    assert "larger than the limit of 1024 bytes (COMPLAINTCORE_MAX_FILE_BYTES)" in line


async def test_good_files_under_the_limit_still_load(
    module_database_url: str, tmp_path: Path
) -> None:
    tree = tmp_path / "tree.json"
    tree.write_bytes(codecs.BOM_UTF8 + json.dumps(TREE, ensure_ascii=False).encode())
    calendar = tmp_path / "2027.csv"
    calendar.write_bytes(codecs.BOM_UTF8 + b"date,kind\r\n2027-01-01,holiday\r\n")
    small = {"COMPLAINTCORE_MAX_FILE_BYTES": "1024"}

    loaded = await run_cli(module_database_url, "institutions", "load", tree, env=small)
    assert loaded.returncode == 0, loaded.stderr
    assert "2 institutions loaded" in loaded.stdout
    loaded = await run_cli(module_database_url, "calendar", "load", calendar, env=small)
    assert loaded.returncode == 0, loaded.stderr
    assert "1 calendar years loaded (2027)" in loaded.stdout

    connection = await asyncpg.connect(module_database_url)
    try:
        codes = await connection.fetch("SELECT code FROM institutions ORDER BY code")
    finally:
        await connection.close()
    assert [row["code"] for row in codes] == ["BR-A", "HO"]


async def test_an_import_line_nested_100000_deep_is_one_refused_line(
    module_database_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "cases.jsonl"
    source.write_text(
        '{"external_id": "DEEP-1", "claims": ' + "[" * 100_000 + "]" * 100_000 + "}\n"
    )
    result = await run_cli(module_database_url, "import", source)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "line 1: invalid_json" in result.stderr
    assert "0 cases imported (0 events), 0 already stored, 1 refused" in result.stdout
