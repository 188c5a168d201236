"""What `complaintcore serve` writes for operators (issue 16, item 6): JSON lines only, from
structlog and from uvicorn alike, one of them naming the address it listens on."""

import json
from pathlib import Path

from testsupport import live_service


def test_serve_writes_json_lines_only_and_names_its_address(
    database_url: str, tmp_path: Path
) -> None:
    with live_service(database_url, {}, tmp_path) as service:
        assert service.client().get("/healthz").status_code == 200

    lines = service.log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # a line that is not JSON fails here
    assert records and all(isinstance(record, dict) for record in records)
    listening = [r["event"] for r in records if "running on" in str(r.get("event", ""))]
    assert any(service.base_url in event for event in listening), listening
