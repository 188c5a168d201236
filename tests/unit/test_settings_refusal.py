"""A bad setting stops every command with one line naming the variables (never their values),
not a traceback; a webhook lease shorter than a send may take is one (found by review passes:
a lease of 1 s against the 10 s timeout sent one delivery four times at once, with no crash)."""

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from complaintcore.cli.main import main
from complaintcore.infra.settings import Settings, get_settings
from complaintcore.webhooks.urls import AllowList


@pytest.fixture(autouse=True)
def settings_read_anew() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_bad_setting_is_one_line_naming_each_variable_but_not_its_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COMPLAINTCORE_POOL_MAX", "many-secret-words")
    monkeypatch.setenv("COMPLAINTCORE_LOG_FORMAT", "xml")

    assert main(["tokens", "list"]) == 1

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("complaintcore: bad settings: ")
    assert "COMPLAINTCORE_POOL_MAX" in lines[0] and "COMPLAINTCORE_LOG_FORMAT" in lines[0]
    assert "many-secret-words" not in lines[0] and "Traceback" not in lines[0]


@pytest.mark.parametrize(("timeout", "lease"), [("10", "1"), ("10", "19.9"), ("3", "4")])
def test_a_lease_ending_before_a_send_may_is_refused(
    monkeypatch: pytest.MonkeyPatch, timeout: str, lease: str
) -> None:
    monkeypatch.setenv("COMPLAINTCORE_WEBHOOK_TIMEOUT", timeout)
    monkeypatch.setenv("COMPLAINTCORE_WEBHOOK_LEASE", lease)
    with pytest.raises(ValidationError, match="COMPLAINTCORE_WEBHOOK_LEASE"):
        Settings()


def test_a_lease_of_the_timeout_plus_ten_seconds_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLAINTCORE_WEBHOOK_TIMEOUT", "3")
    monkeypatch.setenv("COMPLAINTCORE_WEBHOOK_LEASE", "13")
    assert Settings().webhook_lease_s == 13


def test_the_default_lease_and_timeout_are_taken() -> None:
    defaults = Settings()
    assert (defaults.webhook_timeout_s, defaults.webhook_lease_s) == (10, 60)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("COMPLAINTCORE_LOG_LEVEL", "verbose", "COMPLAINTCORE_LOG_LEVEL"),
        ("COMPLAINTCORE_POOL_MIN", "50", "COMPLAINTCORE_POOL_MIN (50) must not exceed"),
        ("DATABASE_URL", "mysql://root:s3cret@db/complaints", "DATABASE_URL"),
        ("DATABASE_URL", "s3cret", "DATABASE_URL"),
        # found by a later review pass: taken silently, each with a cost
        ("COMPLAINTCORE_HOST", "", "COMPLAINTCORE_HOST"),  # uvicorn: every interface
        ("COMPLAINTCORE_METRICS_TOKEN", "", "COMPLAINTCORE_METRICS_TOKEN"),  # /metrics open
        ("COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS", "hooks.bank,10.8.0.0/33", "WEBHOOK_ALLOW_HOSTS"),
        ("COMPLAINTCORE_READ_REPLICA_URLS", "mysql://s3cret@db", "READ_REPLICA_URLS"),
        # ports no number of 1 to 65535, an IPv6 address unclosed: the driver's traceback
        ("DATABASE_URL", "postgresql://u:s3cret@db:99999/complaints", "DATABASE_URL"),
        ("DATABASE_URL", "postgresql://u:s3cret@db:abc/complaints", "DATABASE_URL"),
        ("DATABASE_URL", "postgresql://u:s3cret@[::1:5432/complaints", "DATABASE_URL"),
        ("DATABASE_URL", "postgresql://u:s3cret@a:5432,b:0/complaints", "DATABASE_URL"),
        ("COMPLAINTCORE_READ_REPLICA_URLS", "postgresql://s3cret@db:70000/x", "REPLICA_URLS"),
        # empty, each was read as the working directory
        ("COMPLAINTCORE_MASTER_KEY_FILE", "", "COMPLAINTCORE_MASTER_KEY_FILE"),
        ("COMPLAINTCORE_DATA_DIR", " ", "COMPLAINTCORE_DATA_DIR"),
    ],
)
def test_settings_a_review_pass_found_a_traceback_for_are_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    named: str,
) -> None:
    """An unknown log level was a KeyError, a pool's minimum above its maximum crashed `serve`
    as it started, and a URL of another kind was asyncpg's traceback (or waited for as a
    database down)."""
    monkeypatch.setenv(variable, value)

    assert main(["tokens", "list"]) == 1

    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("complaintcore: bad settings: ") and named in line
    assert "s3cret" not in line


def test_a_log_level_in_any_letter_case_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLAINTCORE_LOG_LEVEL", "WARNING")
    assert Settings().log_level == "warning"


def test_ctrl_c_outside_a_commands_own_handling_is_one_line_and_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by a review pass: Ctrl-C while `migrate` waited for a database was a traceback."""

    def interrupted(*args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("complaintcore.cli.tokens.list_tokens_command", interrupted)

    assert main(["tokens", "list"]) == 130
    assert capsys.readouterr().err == "complaintcore: interrupted\n"


def test_lists_of_hosts_and_replicas_as_the_docs_write_them_are_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS",
        "hooks.bank.internal, 10.8.0.0/16,::1,[fd00::1],Hooks.Test.,hook_receiver",
    )
    monkeypatch.setenv(
        "COMPLAINTCORE_READ_REPLICA_URLS",
        "postgresql://a/db, postgres://b:5433/db, postgresql://u@[::1]:5432/db?x=1",
    )
    settings = Settings()
    assert settings.read_replicas == [
        "postgresql://a/db",
        "postgres://b:5433/db",
        "postgresql://u@[::1]:5432/db?x=1",
    ]
    allowed = AllowList.parse(settings.webhook_allow_hosts)  # what the webhooks read of it
    assert allowed.hosts == {"hooks.bank.internal", "hooks.test", "hook_receiver"}
    assert len(allowed.networks) == 3
