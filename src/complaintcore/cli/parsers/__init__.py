"""The command line's parsers: one light module per command group, each adding its subcommands
with `register(commands)` and naming each subcommand's handler as `module:function` in the group's
handler module (`cli/server.py`, `cli/tokens.py`, ...), imported only once the command's arguments
have parsed.

These modules import the standard library only (`tests/unit/test_cli_help.py` holds them to it),
so `complaintcore --help`, `--version` and a usage error never load alembic, uvicorn, FastAPI,
SQLAlchemy, asyncpg or pydantic.
"""
