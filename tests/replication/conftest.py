"""Tests on real PostgreSQL streaming replication (a primary and a standby built on loopback by
`cluster.primary_and_standby`), marked `replication`: `pytest -m replication tests/replication`,
or `-m "not replication"` to leave them out."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "replication: builds a PostgreSQL primary and streaming standby on loopback (slow)",
    )
