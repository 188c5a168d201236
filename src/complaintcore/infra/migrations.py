"""Applying and checking the Alembic migrations, shipped inside the package (`complaintcore/
migrations/`, package data) so an installed wheel migrates as a checkout does."""

from functools import cache
from importlib.resources import files

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = files("complaintcore") / "migrations"


def alembic_config(database_url: str) -> Config:
    """Alembic's configuration for `database_url`, handed to `migrations/env.py` as it is: the
    driver connects with it (SQLAlchemy's URL parser would refuse a multi-host URL such as
    `postgresql://u@h1:5432,h2:5432/db?target_session_attrs=read-write`, which asyncpg takes)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes[DATABASE_URL_ATTRIBUTE] = database_url
    return config


DATABASE_URL_ATTRIBUTE = "complaintcore.database_url"


def upgrade_to_head(database_url: str) -> None:
    """Apply every pending migration. Blocking; call it outside a running event loop."""
    command.upgrade(alembic_config(database_url), "head")


@cache
def head_revision() -> str:
    """The latest migration's revision; read once, since the migrations ship with the code."""
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused/unused"))
    head = script.get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


async def current_revision(connection: asyncpg.Connection) -> str | None:
    has_table = await connection.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
    if not has_table:
        return None
    return await connection.fetchval("SELECT version_num FROM alembic_version")
