"""A schema that cannot be brought to this release's head stops every command with one line
(found by a review pass: a database migrated by a newer release, or a migration that fails,
was a traceback whose message the log leaves out). The tests are synchronous: the command runs
its own event loop."""

import asyncio
import os
from collections.abc import Iterator

import asyncpg
import pytest
from alembic import command

from complaintcore.cli.main import main
from complaintcore.infra.embedded_db import with_database
from complaintcore.infra.migrations import HEAD_REVISION, alembic_config, upgrade_notes
from complaintcore.infra.settings import get_settings
from testsupport import admin_execute


@pytest.fixture(autouse=True)
def settings_read_anew() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def execute(url: str, statement: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


def refusals(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The command's refusal lines on stderr (its log lines aside)."""
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("complaint")]


def migrate(monkeypatch: pytest.MonkeyPatch, database_url: str) -> int:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("COMPLAINTCORE_DATABASE_WAIT", "1")
    return main(["migrate"])


def test_a_database_of_a_newer_release_is_named_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    execute(database_url, "UPDATE alembic_version SET version_num = '0099'")

    assert migrate(monkeypatch, database_url) == 1
    [line] = refusals(capsys)
    assert line == (
        f"complaintcore: the database's schema cannot be brought to this release's "
        f"{HEAD_REVISION}: Can't locate revision identified by '0099'"
    )


def test_a_migration_that_fails_is_named_by_its_error_and_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], server_url: str
) -> None:
    name = f"migration_refusal_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    fresh = with_database(server_url, name)
    asyncio.run(admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(admin_execute(server_url, f'CREATE DATABASE "{name}"'))
    try:
        execute(fresh, "CREATE TABLE events (x int)")  # in the first migration's way

        assert migrate(monkeypatch, fresh) == 1
        [line] = refusals(capsys)
        assert line.startswith(f"complaintcore: a migration to {HEAD_REVISION} failed: ")
        assert line.endswith("(SQLSTATE 42P07)")
    finally:
        asyncio.run(admin_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_institution_codes_alike_but_for_case_are_named_with_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], database_url: str
) -> None:
    """Releases up to revision 0007 took `br-b` beside `BR-B`; 0008 makes a code name one
    institution whatever its case. Found by a review pass: a bare unique violation."""
    command.downgrade(alembic_config(database_url), "0007")
    execute(
        database_url,
        "INSERT INTO institutions (code, name, kind, parent) VALUES"
        " ('HO', '总行', 'head_office', NULL), ('BR-B', '分行', 'branch', 'HO'),"
        " ('br-b', '支行', 'branch', 'HO'), ('BR-C', '分行', 'branch', 'HO')",
    )

    assert migrate(monkeypatch, database_url) == 1
    [line] = refusals(capsys)
    assert line.startswith(f"complaintcore: a migration to {HEAD_REVISION} was refused: ")
    assert "differ only in letter case: BR-B and br-b." in line and "migrate again" in line


@pytest.mark.parametrize(
    ("started_at", "notes"),
    [(None, []), ("0010", ["case_view", "statistics"]), ("0026", ["statistics"]), ("0027", [])],
)
def test_an_upgrade_says_which_projections_to_rebuild_after_it(
    started_at: str | None, notes: list[str]
) -> None:
    said = upgrade_notes(started_at)
    assert [note.split("projections rebuild ")[1].rstrip("`") for note in said] == notes
