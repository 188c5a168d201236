"""What a review pass of the command line found as tracebacks, each run as an operator runs it (a
subprocess over a real PostgreSQL database): a refusal is one line on stderr (`complaintcore:
...`), never a traceback, and the exit status says what happened (API.md "Command line")."""

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from complaintcore.auth.tokens import create_token
from complaintcore.reference.institutions import InstitutionDirectory

CLI = [sys.executable, "-m", "complaintcore.cli"]


def run(
    *args: str, env: dict[str, str], stdout: int = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=180
    )


def env_on(database_url: str | None, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env.update(
        COMPLAINTCORE_LOG_FORMAT="console", NO_COLOR="1", COMPLAINTCORE_DATABASE_WAIT="0", **extra
    )
    return env


def tail(stderr: str) -> str:
    """The traceback's last lines: the exception that escaped."""
    return " | ".join(line.strip() for line in stderr.strip().splitlines()[-2:])


def assert_one_line_refusal(finished: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in finished.stderr, tail(finished.stderr)
    assert finished.returncode != 0
    # the one line of the refusal (the embedded server's wheel may log as the process exits)
    [line] = [line for line in finished.stderr.splitlines() if line.startswith("complaintcore: ")]
    return line


# --- a DATABASE_URL asyncpg cannot connect with: a traceback from every command ---------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:99999/x",  # port out of range: OverflowError
        "postgresql://postgres@127.0.0.1:abc/x",  # port not a number: ValueError
        "postgresql://postgres@[::1:5432/x",  # unclosed IPv6 bracket: ValueError
    ],
)
@pytest.mark.parametrize("command", [("tokens", "list"), ("migrate",)], ids=" ".join)
def test_a_malformed_database_url_is_refused_in_one_line(
    url: str, command: tuple[str, ...]
) -> None:
    finished = run(*command, env=env_on(url))
    assert "DATABASE_URL" in assert_one_line_refusal(finished)


def test_a_malformed_read_from_url_is_refused_without_repeating_it(database_url: str) -> None:
    finished = run(
        "projections",
        "rebuild",
        "--read-from",
        "postgresql://u:s3cret@db:99999/x",
        env=env_on(database_url),
    )
    assert finished.returncode == 2 and "Traceback" not in finished.stderr
    assert "--read-from" in finished.stderr and "s3cret" not in finished.stderr


# --- personal-data sweep --on in the first years of the calendar: a traceback ----------------


@pytest.mark.parametrize("on", ["0001-01-01", "0005-06-01", "0006-01-01"])
def test_a_sweep_on_a_date_of_the_first_years_is_refused_in_one_line(
    database_url: str, on: str
) -> None:
    finished = run("personal-data", "sweep", "--dry-run", "--on", on, env=env_on(database_url))
    assert finished.returncode == 2 and "Traceback" not in finished.stderr
    assert "--on: must be from 1900-01-01" in finished.stderr


@pytest.mark.parametrize("option", ["--reason", "--legal-basis"])
def test_a_sweep_whose_reason_names_a_mobile_number_is_refused_before_any_case(
    database_url: str, option: str
) -> None:
    """Each erasure keeps its reason and legal basis in clear for good (a review pass)."""
    finished = run(
        "personal-data", "sweep", option, "张三 13800138000 申请删除", env=env_on(database_url)
    )
    assert finished.returncode == 1 and "Traceback" not in finished.stderr
    last = finished.stderr.strip().splitlines()[-1]
    assert last.startswith("complaintcore: the erasure's ground will not do: "), last
    assert "identity or mobile number" in last and "13800138000" not in finished.stderr


# --- import --refusals to /dev/null (or a FIFO, /dev/stdout): a traceback after the import ---


def test_import_with_its_refusals_sent_to_dev_null_reports_and_exits_2(
    database_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "cases.jsonl"
    source.write_text("not json\n")
    finished = run("import", str(source), "--refusals", "/dev/null", env=env_on(database_url))
    assert "Traceback" not in finished.stderr, tail(finished.stderr)
    assert finished.returncode == 2, finished.stderr  # "2 when some were refused"
    assert "1 refused" in finished.stdout


# --- import of a file that fails while it is read (EIO): a traceback -------------------------


def test_import_of_a_file_that_cannot_be_read_is_refused_in_one_line(
    database_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "cases.jsonl"
    source.symlink_to("/proc/self/mem")  # a regular file whose read fails with EIO
    finished = run("import", str(source), env=env_on(database_url))
    last = assert_one_line_refusal(finished)
    assert finished.returncode == 1  # "1 when the file cannot be read"
    assert str(source) in last


# --- demo on a database whose tree or principals clash with the demo's: a traceback ---------


async def test_demo_refuses_in_one_line_when_a_demo_principal_id_is_taken(
    database_url: str, pool: asyncpg.Pool
) -> None:
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    await create_token(pool, "SH-001", "staff", "BR-A")  # the demo's 上海分行 handler's id

    finished = run("demo", "--cases", "1", env=env_on(database_url))

    assert "the demo cannot be played on this database" in assert_one_line_refusal(finished)


async def test_demo_refuses_in_one_line_when_its_head_office_code_is_taken_in_another_case(
    database_url: str, pool: asyncpg.Pool
) -> None:
    await InstitutionDirectory(pool).put("b0917h111000001", "某银行", "head_office")

    finished = run("demo", "--cases", "1", env=env_on(database_url))

    assert "the demo cannot be played on this database" in assert_one_line_refusal(finished)


# --- the embedded database under a data folder that cannot be one: a traceback --------------


def test_an_embedded_data_folder_that_is_a_file_is_refused_in_one_line(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "pgdata"
    not_a_folder.write_text("a file, not a folder")
    finished = run("tokens", "list", env=env_on(None, COMPLAINTCORE_DATA_DIR=str(not_a_folder)))
    line = assert_one_line_refusal(finished)
    assert "the embedded PostgreSQL cannot start in" in line and "COMPLAINTCORE_DATA_DIR" in line


# --- a closed stdout (`| head`) is reported as a database failure -----------------------------


async def test_a_closed_stdout_is_not_reported_as_the_database_failing(
    database_url: str, pool: asyncpg.Pool
) -> None:
    for number in range(400):  # enough lines to outgrow stdout's buffer inside the handler
        await create_token(pool, f"reg-{number}", "regulator", None)
    process = subprocess.Popen(
        [*CLI, "tokens", "list"],
        env=env_on(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()  # as `complaintcore tokens list | head -1` does once it has its line
    _, stderr = process.communicate(timeout=120)
    assert "the database cannot be used" not in stderr and "Traceback" not in stderr, stderr


# --- import --batch beyond sys.maxsize: a traceback ------------------------------------------


def test_import_with_a_huge_batch_is_refused_in_one_line(database_url: str, tmp_path: Path) -> None:
    source = tmp_path / "cases.jsonl"
    source.write_text("not json\n")
    finished = run("import", str(source), "--batch", str(2**64), env=env_on(database_url))
    assert "Traceback" not in finished.stderr, tail(finished.stderr)
    assert finished.returncode == 2 and "--batch: must be from 1 to 1,000,000" in finished.stderr
