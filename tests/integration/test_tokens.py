"""Bearer tokens on PostgreSQL: stored only as their SHA-256, checked against role rules."""

import asyncio
import hashlib

import asyncpg
import pytest

from complaintcore.auth.principals import Principal
from complaintcore.auth.tokens import (
    InvalidTokenRequest,
    create_token,
    principal_for_token,
    revoke_token,
)
from complaintcore.reference.institutions import InstitutionDirectory


@pytest.fixture
async def pool_with_branch(pool: asyncpg.Pool) -> asyncpg.Pool:
    directory = InstitutionDirectory(pool)
    await directory.put("CCB", "中国建设银行", "head_office")
    await directory.put("CCB-GD", "广东省分行", "branch", "CCB")
    return pool


async def test_a_token_names_its_principal(pool_with_branch: asyncpg.Pool) -> None:
    token = await create_token(pool_with_branch, "staff-0042", "staff", "CCB-GD")
    assert token.startswith("cc_")
    assert await principal_for_token(pool_with_branch, token) == Principal(
        id="staff-0042", role="staff", institution="CCB-GD"
    )


async def test_the_token_is_stored_only_as_its_sha256(pool_with_branch: asyncpg.Pool) -> None:
    token = await create_token(pool_with_branch, "sup-7", "supervisor", "CCB")
    rows = await pool_with_branch.fetch("SELECT * FROM api_tokens")
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    stored_text = " ".join(str(value) for value in rows[0].values())
    assert token not in stored_text
    assert token.removeprefix("cc_") not in stored_text


async def test_every_token_is_new(pool_with_branch: asyncpg.Pool) -> None:
    tokens = {await create_token(pool_with_branch, "reg-1", "regulator", None) for _ in range(5)}
    assert len(tokens) == 5


@pytest.mark.parametrize(
    "token", ["", "cc_", "cc_not-a-real-token", "Bearer cc_x", "x" * 10_000, "cc_" + "a" * 500]
)
async def test_an_unknown_token_has_no_principal(
    pool_with_branch: asyncpg.Pool, token: str
) -> None:
    await create_token(pool_with_branch, "reg-1", "regulator", None)
    assert await principal_for_token(pool_with_branch, token) is None


async def test_a_revoked_token_has_no_principal(pool_with_branch: asyncpg.Pool) -> None:
    token = await create_token(pool_with_branch, "admin-1", "admin", None)
    assert await revoke_token(pool_with_branch, token) is True
    assert await principal_for_token(pool_with_branch, token) is None
    assert await revoke_token(pool_with_branch, token) is False


@pytest.mark.parametrize(
    ("role", "institution"),
    [("regulator", None), ("admin", None), ("supervisor", "CCB-GD")],
)
async def test_allowed_role_and_institution_pairs(
    pool_with_branch: asyncpg.Pool, role: str, institution: str | None
) -> None:
    token = await create_token(pool_with_branch, "p-1", role, institution)
    principal = await principal_for_token(pool_with_branch, token)
    assert principal == Principal("p-1", role, institution)


@pytest.mark.parametrize(
    ("principal_id", "role", "institution", "code"),
    [
        ("p-1", "staff", None, "institution_required"),
        ("p-1", "supervisor", None, "institution_required"),
        ("p-1", "regulator", "CCB", "institution_not_allowed"),
        ("p-1", "admin", "CCB", "institution_not_allowed"),
        ("p-1", "staff", "GHOST", "unknown_institution"),
        ("p-1", "root", None, "unknown_role"),
        ("", "admin", None, "invalid_principal_id"),
        ("two words", "admin", None, "invalid_principal_id"),
        # staff and supervisors are named in commands by staff ids (API.md: codes)
        ("张三", "staff", "CCB", "invalid_principal_id"),
        ("staff:1/x", "staff", "CCB", "invalid_principal_id"),
        ("s" * 65, "supervisor", "CCB", "invalid_principal_id"),
        ("-s1", "supervisor", "CCB", "invalid_principal_id"),
    ],
)
async def test_a_bad_request_is_refused_and_stores_nothing(
    pool_with_branch: asyncpg.Pool,
    principal_id: str,
    role: str,
    institution: str | None,
    code: str,
) -> None:
    with pytest.raises(InvalidTokenRequest) as refused:
        await create_token(pool_with_branch, principal_id, role, institution)
    assert refused.value.code == code
    assert await pool_with_branch.fetchval("SELECT count(*) FROM api_tokens") == 0


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("staff", "CCB-GD"), ("staff", "CCB")),
        (("supervisor", "CCB"), ("staff", "CCB-GD")),
        (("staff", "CCB-GD"), ("regulator", None)),
        (("admin", None), ("staff", "CCB-GD")),
    ],
)
async def test_a_principal_id_belongs_to_one_institution(
    pool_with_branch: asyncpg.Pool,
    first: tuple[str, str | None],
    second: tuple[str, str | None],
) -> None:
    await create_token(pool_with_branch, "staff-a", *first)
    with pytest.raises(InvalidTokenRequest) as refused:
        await create_token(pool_with_branch, "staff-a", *second)
    assert refused.value.code == "principal_id_taken"
    assert str(first[1] or "(none)") in str(refused.value)
    assert await pool_with_branch.fetchval("SELECT count(*) FROM api_tokens") == 1


async def test_a_revoked_token_still_holds_its_principal_id(
    pool_with_branch: asyncpg.Pool,
) -> None:
    token = await create_token(pool_with_branch, "staff-a", "staff", "CCB-GD")
    await revoke_token(pool_with_branch, token)
    with pytest.raises(InvalidTokenRequest):
        await create_token(pool_with_branch, "staff-a", "staff", "CCB")


async def test_more_tokens_for_one_principal_at_its_institution_are_fine(
    pool_with_branch: asyncpg.Pool,
) -> None:
    await create_token(pool_with_branch, "staff-a", "staff", "CCB-GD")
    token = await create_token(pool_with_branch, "staff-a", "supervisor", "CCB-GD")
    assert await principal_for_token(pool_with_branch, token) == Principal(
        "staff-a", "supervisor", "CCB-GD"
    )


async def test_racing_creations_for_one_id_leave_it_at_one_institution(
    pool_with_branch: asyncpg.Pool,
) -> None:
    results = await asyncio.gather(
        *(
            create_token(pool_with_branch, "staff-race", "staff", code)
            for code in ["CCB", "CCB-GD"] * 5
        ),
        return_exceptions=True,
    )
    assert any(isinstance(result, str) for result in results)
    institutions = await pool_with_branch.fetch(
        "SELECT DISTINCT institution FROM api_tokens WHERE principal_id = 'staff-race'"
    )
    assert len(institutions) == 1


async def test_a_staff_id_is_a_code_the_commands_take_and_other_roles_ids_are_freer(
    pool_with_branch: asyncpg.Pool,
) -> None:
    longest = "s" + "1" * 63
    await create_token(pool_with_branch, longest, "staff", "CCB")
    await create_token(pool_with_branch, "ops@bank:1", "admin", None)
    ids = await pool_with_branch.fetch("SELECT principal_id FROM api_tokens ORDER BY 1")
    assert [row["principal_id"] for row in ids] == ["ops@bank:1", longest]
