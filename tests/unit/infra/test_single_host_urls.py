"""A multi-host DATABASE_URL split into one URL per host, tried in turn with a connect timeout
each (infra/database.py `connect_each_host`)."""

from collections.abc import Iterator

import pytest

from complaintcore.cli.main import main
from complaintcore.infra.database import single_host_urls
from complaintcore.infra.settings import get_settings


def test_each_host_gets_the_url_s_user_database_and_parameters() -> None:
    url = "postgresql://app:secret@db1:5432,db2:5433/complaintcore?target_session_attrs=read-write"
    assert single_host_urls(url) == [
        "postgresql://app:secret@db1:5432/complaintcore?target_session_attrs=read-write",
        "postgresql://app:secret@db2:5433/complaintcore?target_session_attrs=read-write",
    ]


def test_ipv6_hosts_and_the_sqlalchemy_spelling() -> None:
    url = "postgresql+asyncpg://u@[::1]:5432,127.0.0.1:5433/db"
    assert single_host_urls(url) == [
        "postgresql://u@[::1]:5432/db",
        "postgresql://u@127.0.0.1:5433/db",
    ]


def test_one_host_or_hosts_as_parameters_stay_as_they_are() -> None:
    one = "postgresql://u@db1:5432/db?sslmode=require"
    sockets = "postgresql://u@/db?host=/run/a,/run/b"
    no_user = "postgresql://db1,db2/db"
    assert single_host_urls(one) == [one]
    assert single_host_urls(sockets) == [sockets]
    assert single_host_urls(no_user) == ["postgresql://db1/db", "postgresql://db2/db"]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app@db1,db2?target_session_attrs=read-write",
        "postgresql://app@db1:5432,db2:5433?target_session_attrs=read-write&sslmode=verify-full",
        "postgresql://app@db1,db2#fragment",
    ],
)
def test_every_host_keeps_the_parameters_when_the_url_names_no_database(url: str) -> None:
    """libpq reads `postgresql://h1,h2?target_session_attrs=read-write` (the database is then the
    user's name) and the settings' check takes it; the first host lost the parameters (found by
    a review pass: a standby listed first took the pool, `sslmode` gone from it)."""
    rest = url[url.index(",") :].split("db2", 1)[1].split(":5433", 1)[-1]
    for one in single_host_urls(url):
        assert one.endswith(rest), one
    assert len(single_host_urls(url)) == 2


@pytest.fixture
def settings_read_anew() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("settings_read_anew")
@pytest.mark.parametrize("url", ["postgresql://nobody@,/none", "postgresql://,/none"])
def test_a_url_naming_no_host_is_refused_in_one_line(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It reached the connection as an AssertionError's traceback (found by a review pass)."""
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("COMPLAINTCORE_DATABASE_WAIT", "1")
    assert main(["migrate"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("complaintcore: ")
    assert "must name a host" in err
