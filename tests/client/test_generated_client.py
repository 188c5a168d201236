"""The contract is usable as written (issue 16): a client generated from `openapi.yaml` by
openapi-python-client walks a case through receive, assign, decide, read, events and audit
against a live `complaintcore serve`. Run by `make test-client`, which installs the generator
into `.client-tools/` and generates the client there (COMPLAINTCORE_CLIENT_TOOLS)."""

import os
import subprocess
from pathlib import Path

import asyncpg

from complaintcore.application.business_day import shanghai_today
from complaintcore.auth.tokens import create_token
from complaintcore.reference.institutions import InstitutionDirectory
from testsupport import live_service

WALK = Path(__file__).with_name("walk_a_case.py")


async def test_a_generated_client_walks_a_case(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    tools = Path(os.environ["COMPLAINTCORE_CLIENT_TOOLS"])
    directory = InstitutionDirectory(pool)
    await directory.put("HO", "总行", "head_office")
    await directory.put("BR-A", "上海分行", "branch", "HO")
    token = await create_token(pool, "staff-a1", "staff", "BR-A")

    with live_service(database_url, {}, tmp_path) as service:
        walked = subprocess.run(
            [
                str(tools / "bin" / "python"),
                str(WALK),
                str(tools / "generated"),
                service.base_url,
                token,
                shanghai_today().isoformat(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert walked.returncode == 0, walked.stderr
    assert "chain intact" in walked.stdout
