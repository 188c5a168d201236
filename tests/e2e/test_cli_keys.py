"""`complaintcore keys create FILE`, run as an operator runs it: a subprocess, with no database.
It writes a master key file of mode 0600 that `FileKeyProvider` loads and prints one line naming
its key id; it never overwrites a file and refuses a path it cannot write, each in one line on
stderr with exit status 1 (never a traceback)."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from complaintcore.crypto.keys import FILE_MAGIC, FileKeyProvider, create_master_key_file
from complaintcore.crypto.suites import AES_256_GCM, SM4_GCM

TIMEOUT_S = 60


def run_keys_create(
    folder: Path, *args: str | Path, umask: int | None = None
) -> subprocess.CompletedProcess[str]:
    """`complaintcore keys create ARGS` run in `folder`, with no database configured (the command
    needs none: an embedded one would start under `folder/.pgdata`)."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key != "DATABASE_URL" and not key.startswith("COMPLAINTCORE_")
    }
    environment.update(COMPLAINTCORE_LOG_FORMAT="json")
    command = [sys.executable, "-m", "complaintcore.cli", "keys", "create", *map(str, args)]
    previous = os.umask(umask) if umask is not None else None
    try:
        return subprocess.run(
            command,
            cwd=folder,
            env=environment,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"keys create {' '.join(map(str, args))} still ran after {TIMEOUT_S} s")
    finally:
        if previous is not None:
            os.umask(previous)


def key_line(path: Path) -> list[str]:
    return next(
        line.split() for line in path.read_text().splitlines() if line.startswith(FILE_MAGIC)
    )


def assert_refused_in_one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("complaintcore: "), lines[0]
    assert result.stdout == ""
    return lines[0]


def test_writes_a_0600_key_file_that_loads_and_names_its_key_id(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    result = run_keys_create(tmp_path, path, umask=0)  # 0600 even with nothing masked
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    provider = FileKeyProvider(path)
    assert provider.suite.name == AES_256_GCM  # the default
    assert result.stdout == (
        f"master key {provider.key_id} written to {path} ({AES_256_GCM}); "
        "keep it apart from the database and its backups\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_line(path)[2:4] == [AES_256_GCM, provider.key_id]
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["master.key"]  # no database


def test_a_relative_path_is_written_in_the_working_directory(tmp_path: Path) -> None:
    result = run_keys_create(tmp_path, "master.key")
    assert result.returncode == 0, result.stderr
    key_id = FileKeyProvider(tmp_path / "master.key").key_id
    assert result.stdout.startswith(f"master key {key_id} written to master.key ")


def test_suite_sm4_gcm_writes_an_sm4_key(tmp_path: Path) -> None:
    path = tmp_path / "sm4.key"
    result = run_keys_create(tmp_path, path, "--suite", SM4_GCM)
    assert result.returncode == 0, result.stderr
    provider = FileKeyProvider(path)
    assert provider.suite.name == SM4_GCM
    assert f"master key {provider.key_id} written to {path} ({SM4_GCM})" in result.stdout
    assert key_line(path)[2] == SM4_GCM
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    before = path.read_bytes()
    mode = stat.S_IMODE(path.stat().st_mode)

    result = run_keys_create(tmp_path, path)
    line = assert_refused_in_one_line(result)
    assert line.startswith(f"complaintcore: {path} already exists"), line
    assert "never overwritten" in line
    assert path.read_bytes() == before
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["master.key"]  # no leftovers


def test_an_existing_file_of_any_content_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"not a key, but not to be lost either\n")
    line = assert_refused_in_one_line(run_keys_create(tmp_path, path, "--suite", SM4_GCM))
    assert "already exists" in line
    assert path.read_bytes() == b"not a key, but not to be lost either\n"


def test_a_path_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "no-such-folder" / "master.key"
    line = assert_refused_in_one_line(run_keys_create(tmp_path, path))
    assert line == (
        f"complaintcore: {path}: cannot create the master key file: "
        f"folder {path.parent} does not exist"
    )
    assert not path.parent.exists()


def test_a_path_under_a_regular_file_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("a file, not a folder\n")
    path = plain / "master.key"
    line = assert_refused_in_one_line(run_keys_create(tmp_path, path))
    assert line.startswith(f"complaintcore: {path}: cannot create the master key file"), line
    assert plain.read_text() == "a file, not a folder\n"
