"""Applying and checking the Alembic migrations, shipped inside the package (`complaintcore/
migrations/`, package data) so an installed wheel migrates as a checkout does.

Every command migrates before it starts, and almost always there is nothing to apply: the
database's revision is read first (one query), and Alembic, whose import and script loading
cost a start a second or two, is loaded only when the revision is not the latest.
"""

import asyncio
from importlib.resources import files
from typing import TYPE_CHECKING

import asyncpg
import structlog

from complaintcore.infra.database import connect_each_host, plain_url

if TYPE_CHECKING:
    from alembic.config import Config

log = structlog.get_logger("complaintcore.migrations")

MIGRATIONS_DIR = files("complaintcore") / "migrations"

# The latest migration's revision: a new migration moves it (a unit test holds it to the head
# Alembic finds in the migrations folder).
HEAD_REVISION = "0028"

DATABASE_URL_ATTRIBUTE = "complaintcore.database_url"


def alembic_config(database_url: str) -> "Config":
    """Alembic's configuration for `database_url`, handed to `migrations/env.py` as it is: the
    driver connects with it (SQLAlchemy's URL parser would refuse a multi-host URL such as
    `postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write`, which asyncpg takes)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes[DATABASE_URL_ATTRIBUTE] = database_url
    return config


class MigrationFailed(Exception):
    """The schema cannot be brought to this release's head; the message is one line (found by a
    review pass: a database migrated by a newer release, or a migration failing, was a
    traceback from every command)."""


class MigrationRefused(Exception):
    """A migration that will not run on the data it finds; the message (one line, naming no
    personal data) says what the operator must do first."""


def upgrade_to_head(database_url: str) -> None:
    """Apply every pending migration. Blocking; call it outside a running event loop.
    `MigrationFailed` when that cannot be done (nothing of a failed migration stays: each runs
    in a transaction)."""
    started_at = asyncio.run(_revision_at(database_url))
    if started_at == HEAD_REVISION:
        return
    from alembic import command
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import DBAPIError

    try:
        command.upgrade(alembic_config(database_url), "head")
    except MigrationRefused as refused:
        raise MigrationFailed(f"a migration to {HEAD_REVISION} was refused: {refused}") from None
    except CommandError as error:  # e.g. a revision this release does not know: a newer one's
        raise MigrationFailed(
            f"the database's schema cannot be brought to this release's {HEAD_REVISION}: "
            f"{str(error).splitlines()[0]}"
        ) from None
    except DBAPIError as error:  # its message may quote a statement's values: type and code only
        cause = error.orig
        code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
        raise MigrationFailed(
            f"a migration to {HEAD_REVISION} failed: {type(cause).__name__} (SQLSTATE {code})"
        ) from None
    for note in upgrade_notes(started_at):
        log.warning("after this upgrade", to_do=note)


# What an upgrade from before a revision leaves for the operator to do (found by a review pass
# upgrading the releases of git history with their own data).
_UPGRADE_NOTES = (
    (
        "0011",
        "the case rows stored before revision 0011 hold no blind index nor closing day (the"
        " complainant search and the retention sweep pass them over): run `complaintcore"
        " projections rebuild case_view`",
    ),
    (
        "0027",
        "the statistics are written again from the feed; processes of an older release still"
        " running write them the old way: once they are all stopped, run `complaintcore"
        " projections rebuild statistics`",
    ),
)


def upgrade_notes(started_at: str | None) -> list[str]:
    """What to do after upgrading a database from revision `started_at` (None: a new one)."""
    if started_at is None:
        return []
    return [note for before, note in _UPGRADE_NOTES if started_at < before]


def head_revision() -> str:
    """The latest migration's revision."""
    return HEAD_REVISION


async def current_revision(connection: asyncpg.Connection) -> str | None:
    has_table = await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
    if not has_table:
        return None
    return await connection.fetchval("SELECT version_num FROM alembic_version")


async def _revision_at(database_url: str) -> str | None:
    # connected as migrations/env.py connects: each host in turn, target_session_attrs honoured
    connection = await connect_each_host(plain_url(database_url))
    try:
        return await current_revision(connection)
    finally:
        await connection.close()
