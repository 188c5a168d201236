"""A case sealed under a suite this build cannot run (SM4 missing from a system OpenSSL, which the
README names) answers 503 `cipher_suite_unavailable` with Retry-After, not a 500 (found by a
review pass); the service stays up for the others."""

import asyncpg
import pytest

from api_support import app_client, complaint
from complaintcore.crypto import suites
from complaintcore.events import hashing
from complaintcore.infra.settings import get_settings
from projection_support import tree_and_tokens


async def test_a_stream_of_a_suite_this_openssl_lacks(
    database_url: str, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = await tree_and_tokens(database_url, {"staff": ("staff-a1", "staff", "BR-A")})
    staff = {"Authorization": f"Bearer {tokens['staff']}"}
    aes = get_settings().model_copy(update={"cipher_suite": "aes-256-gcm"})
    async with app_client(database_url, aes) as client:  # first run: aes (its service keys)
        assert (await client.get("/readyz")).status_code == 200
    sm4 = get_settings().model_copy(update={"cipher_suite": "sm4-gcm"})
    async with app_client(database_url, sm4) as client:
        created = await client.post("/v1/complaints", json=complaint(), headers=staff)
        assert created.status_code == 201, created.text
        case_id = created.json()["id"]

    # the same database served by a build whose OpenSSL has no SM4 (the configured suite: aes)
    real = suites._self_tested

    def without_sm4(name: str) -> None:
        if name == suites.SM4_GCM:
            raise suites.SuiteUnavailable("cipher suite sm4-gcm is not available here")
        real(name)

    monkeypatch.setattr(suites, "_self_tested", without_sm4)
    hashing._suite_digest.cache_clear()
    async with app_client(database_url, aes) as client:
        ready = await client.get("/readyz")
        shown = await client.get(f"/v1/complaints/{case_id}", headers=staff)
    hashing._suite_digest.cache_clear()
    assert ready.status_code == 200
    assert shown.status_code == 503 and shown.json()["code"] == "cipher_suite_unavailable"
    assert "retry-after" in shown.headers
