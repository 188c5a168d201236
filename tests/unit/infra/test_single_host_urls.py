"""A multi-host DATABASE_URL split into one URL per host, tried in turn with a connect timeout
each (infra/database.py `connect_each_host`)."""

from complaintcore.infra.database import single_host_urls


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
