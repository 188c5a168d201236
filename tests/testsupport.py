"""Small helpers shared by the test folders (importable as `testsupport`: pytest puts `tests/`
on the path, see `pythonpath` in pyproject.toml)."""

import socket

TEMPLATE_DATABASE = "complaintcore_test_template"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
