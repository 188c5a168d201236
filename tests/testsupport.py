"""Small helpers shared by the test folders (importable as `testsupport`: pytest puts `tests/`
on the path, see `pythonpath` in pyproject.toml)."""

import socket
from dataclasses import dataclass
from pathlib import Path

import httpx

TEMPLATE_DATABASE = "complaintcore_test_template"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class LiveService:
    base_url: str
    database_url: str
    tokens: dict[str, str]
    log_path: Path

    def client(self, who: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def async_client(self, who: str) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        limits = httpx.Limits(max_connections=100)
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=60, limits=limits)
