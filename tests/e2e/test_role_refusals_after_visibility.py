"""API.md's conventions where a review pass found the service answering otherwise: 404 outside
one's subtree before 403 for a role (the erasure, the staff figures), and the access log's actor
filter taking every id a token may carry. Each test quotes the line it holds the service to."""

import pytest

from api_support import ok, post, receive, refused
from complaintcore.auth.tokens import create_token
from complaintcore.infra.database import create_pool
from testsupport import LiveService

# A principal id as `complaintcore tokens create --id` accepts it (printable, no spaces).
NON_ASCII_REGULATOR_ID = "监管员-01"


@pytest.fixture(scope="module")
async def tokens(module_database_url: str) -> dict[str, str]:
    from projection_support import tree_and_tokens

    made = await tree_and_tokens(
        module_database_url,
        {
            "staff_a": ("staff-a1", "staff", "BR-A"),
            "staff_b": ("staff-b1", "staff", "BR-B"),
            "supervisor_b": ("sup-b1", "supervisor", "BR-B"),
            "supervisor_ho": ("sup-ho1", "supervisor", "HO"),
            "regulator": ("reg-1", "regulator", None),
            "admin": ("admin-1", "admin", None),
        },
    )
    pool = await create_pool(module_database_url, min_size=1, max_size=2)
    try:
        made["regulator_cn"] = await create_token(pool, NON_ASCII_REGULATOR_ID, "regulator", None)
    finally:
        await pool.close()
    return made


@pytest.fixture(scope="module")
def case(live: LiveService) -> dict:
    """A BR-A case, assigned."""
    with live.client("staff_a") as staff:
        case = receive(staff)
        ok(post(staff, case, "assign", {"handler_id": "staff-a1"}))
    return case


def test_erase_by_staff_of_another_branch_is_404_like_every_other_command(
    live: LiveService, case: dict
) -> None:
    """API.md Conventions: "Outside one's subtree: 404 (no existence leak). A role that may not
    use a route or command gets 403 where it can see the resource."

    staff-b1 (BR-B) cannot see the BR-A case: approve-redress (another command their role may
    not use) answers 404, erase-personal-data answers 403."""
    with live.client("staff_b") as other_branch:
        refused(
            post(other_branch, case, "approve-redress", {"up_to_fen": 100, "note": "n"}),
            "not_found",
            404,
        )
        erase = post(other_branch, case, "erase-personal-data", {"reason": "r", "legal_basis": "b"})
    refused(erase, "not_found", 404)


def test_staff_statistics_of_another_subtree_is_404_for_those_who_cannot_see_it(
    live: LiveService,
) -> None:
    """API.md Conventions: "Outside one's subtree: 404 ... 403 where it can see the resource";
    `staff-statistics` is for "supervisors of the subtree, admins".

    staff-b1 (BR-B) cannot see BR-A (its statistics route answers 404); its staff statistics
    answer 403 instead."""
    with live.client("staff_b") as other_branch:
        refused(other_branch.get("/v1/institutions/BR-A/statistics"), "not_found", 404)
        response = other_branch.get("/v1/institutions/BR-A/staff-statistics")
    refused(response, "not_found", 404)


def test_the_access_log_filters_by_any_actor_a_token_may_carry(
    live: LiveService, case: dict
) -> None:
    """API.md Personal data: `GET /v1/personal-data-access` takes `actor?`; `tokens create --id`
    accepts any printable id without spaces, so a regulator "监管员-01" reveals a case (logged
    under that actor), but the log cannot be filtered by that actor: 422 on `actor`."""
    with live.client("regulator_cn") as regulator_cn:
        revealed = regulator_cn.get(
            f"/v1/complaints/{case['id']}/personal-data", params={"purpose": "核查"}
        )
        assert revealed.status_code == 200, revealed.text
    with live.client("regulator") as regulator:
        unfiltered = ok(regulator.get("/v1/personal-data-access", params={"case_id": case["id"]}))
        assert NON_ASCII_REGULATOR_ID in {row["actor"] for row in unfiltered["items"]}
        response = regulator.get(
            "/v1/personal-data-access", params={"actor": NON_ASCII_REGULATOR_ID}
        )
    assert response.status_code == 200, response.text
    assert [row["actor"] for row in response.json()["items"]] == [NON_ASCII_REGULATOR_ID]
