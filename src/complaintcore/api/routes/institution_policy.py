"""`/v1/institutions/{code}/policy`: institution policy with history (API.md "Institution
policy"; DOMAIN.md "Institution policy")."""

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from complaintcore.api.auth import AdminPrincipal, CurrentPrincipal, can_see
from complaintcore.api.deps import Institutions, Policies
from complaintcore.api.json_bodies import ExactJsonRoute
from complaintcore.api.problems import FieldProblem, invalid, not_found, problem_responses
from complaintcore.api.routes.institutions import CodePath
from complaintcore.api.schemas.policy import PolicyHistoryOut, PolicyInForceOut, PolicyVersionOut
from complaintcore.application.business_day import shanghai_today
from complaintcore.application.policy_store import UnknownPolicyInstitution, taxonomy_of
from complaintcore.application.requests.fields import (
    BusinessDate,
    Count,
    Fen,
    Flag,
    IsoDate,
    ShortText,
)
from complaintcore.domain.policy import PolicyRefused, PolicySettings
from complaintcore.domain.taxonomy import (
    CODE_PATTERN,
    MAX_CODE_LENGTH,
    Taxonomy,
    code_listed_twice,
)

log = structlog.get_logger("complaintcore.api.institution_policy")

router = APIRouter(prefix="/v1/institutions", tags=["institutions"], route_class=ExactJsonRoute)


class RedressLimitsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff: Fen | None = Field(default=None, description="Staff's limit; absent: inherited.")
    supervisor: Fen | None = Field(
        default=None, description="Supervisors' limit; absent: inherited."
    )


class TaxonomyItemBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[
        str, StringConstraints(max_length=MAX_CODE_LENGTH, pattern=f"^{CODE_PATTERN}$")
    ] = Field(description="Stable snake_case code, kept by events and statistics for good.")
    label_zh: ShortText = Field(description="Chinese label.")
    label_en: ShortText = Field(description="English label.")


TaxonomyItems = Annotated[list[TaxonomyItemBody], Field(min_length=1, max_length=500)]


class TaxonomyBody(BaseModel):
    """Every business type and cause complaints may be filed under from `effective_from` on: a
    version replaces the lists it inherits. Cases already received keep their codes."""

    model_config = ConfigDict(extra="forbid")

    business: TaxonomyItems
    causes: TaxonomyItems

    @field_validator("business", "causes")
    @classmethod
    def _each_code_once(cls, items: list[TaxonomyItemBody]) -> list[TaxonomyItemBody]:
        twice = code_listed_twice(item.code for item in items)
        if twice is not None:
            raise PydanticCustomError(
                "duplicate_code", "code {code} is listed twice", {"code": twice}
            )
        return items

    def taxonomy(self) -> Taxonomy:
        """As its column keeps it (`policy_store.taxonomy_of`)."""
        return taxonomy_of(self.model_dump())


class PolicyBody(BaseModel):
    """A new version of the node's policy; each value left out is inherited from the nearest
    ancestor that sets it (or DOMAIN.md's default). It replaces the node's earlier versions from
    `effective_from` on."""

    model_config = ConfigDict(extra="forbid")

    effective_from: BusinessDate = Field(
        description="The first day it applies: today (Asia/Shanghai) or later, never earlier."
    )
    roll_past_holidays: Flag | None = Field(
        default=None, description="A due date on a public holiday moves to the next working day."
    )
    due_soon_days: Annotated[Count, Field(ge=0, le=366)] | None = Field(
        default=None, description="Days left at or below which a case is `due_soon`."
    )
    retention_years: Annotated[Count, Field(ge=1, le=100)] | None = Field(
        default=None, description="Years a closed case's personal data is kept."
    )
    redress_limits_fen: RedressLimitsBody | None = Field(
        default=None, description="Redress authority per role, in fen."
    )
    taxonomy: TaxonomyBody | None = Field(
        default=None,
        description="The business types and causes complaints are filed under (DOMAIN.md "
        '"Taxonomy"); absent: inherited.',
    )

    def settings(self) -> PolicySettings:
        limits = self.redress_limits_fen or RedressLimitsBody()
        return PolicySettings(
            roll_past_holidays=self.roll_past_holidays,
            due_soon_days=self.due_soon_days,
            retention_years=self.retention_years,
            staff_redress_limit_fen=limits.staff,
            supervisor_redress_limit_fen=limits.supervisor,
            taxonomy=self.taxonomy.taxonomy() if self.taxonomy else None,
        )


POLICY_BODY_EXAMPLES: dict[str, Any] = {
    "branch_override": {
        "summary": "A branch warns earlier and rolls past holidays from 2027",
        "value": {"effective_from": "2027-01-01", "roll_past_holidays": True, "due_soon_days": 5},
    },
    "redress_limits": {
        "summary": "Higher staff authority; the supervisors' limit inherited",
        "value": {"effective_from": "2027-01-01", "redress_limits_fen": {"staff": 200000}},
    },
    "taxonomy": {
        "summary": "An insurer's own business types and causes",
        "value": {
            "effective_from": "2027-01-01",
            "taxonomy": {
                "business": [
                    {
                        "code": "life_insurance_claims",
                        "label_zh": "人身保险理赔",
                        "label_en": "life insurance claims",
                    },
                    {"code": "surrender", "label_zh": "退保", "label_en": "surrender"},
                    {"code": "other", "label_zh": "其他", "label_en": "other"},
                ],
                "causes": [
                    {"code": "marketing", "label_zh": "营销方式和手段", "label_en": "marketing"},
                    {"code": "other", "label_zh": "其他", "label_en": "other"},
                ],
            },
        },
    },
}


@router.put(
    "/{code}/policy",
    operation_id="put_institution_policy",
    response_model=PolicyHistoryOut,
    response_description="The version was recorded; the node's versions.",
    responses=problem_responses(
        401,
        403,
        404,
        422,
        503,
        descriptions={422: "Bad input, or `effective_from_in_past`."},
    ),
)
async def put_institution_policy(
    code: CodePath,
    body: Annotated[PolicyBody, Body(openapi_examples=POLICY_BODY_EXAMPLES)],
    admin: AdminPrincipal,
    policies: Policies,
) -> PolicyHistoryOut:
    """Record a new version of the node's policy. Admin only.

    Versions are kept for good, each with who recorded it and when; a change takes effect on
    `effective_from`, which may not lie before today (422 `effective_from_in_past`), so no case
    already judged is judged anew. 404 for an unknown node. The node's last version sent again
    (the same `effective_from` and values) records nothing and answers the same history: a PUT
    retried after a lost answer is one PUT.
    """
    try:
        history = await policies.append(
            code, body.effective_from, body.settings(), admin.id, shanghai_today()
        )
    except PolicyRefused as refusal:
        problem = FieldProblem(field="effective_from", code=refusal.code, message=refusal.message)
        raise invalid([problem], code=refusal.code) from None
    except UnknownPolicyInstitution:
        raise not_found("institution") from None
    log.info("institution policy recorded", institution=code, actor=admin.id)
    return PolicyHistoryOut(
        institution=code, versions=[PolicyVersionOut.of(recorded) for recorded in history]
    )


@router.get(
    "/{code}/policy",
    operation_id="get_institution_policy",
    response_model=PolicyInForceOut,
    response_description="Each value in force on the day, with its source and version.",
    responses=problem_responses(401, 404, 422, 503),
)
async def get_institution_policy(
    code: CodePath,
    principal: CurrentPrincipal,
    institutions: Institutions,
    policies: Policies,
    on: Annotated[
        IsoDate | None, Query(description="The day, YYYY-MM-DD; default today (Asia/Shanghai).")
    ] = None,
) -> PolicyInForceOut:
    """The node's policy in force on `on`: each value with `source` (the code of the node that
    set it, or `default`) and the version that set it.

    Staff and supervisors see only their own institution's subtree; any other node is 404.
    Regulators and admins see every node.
    """
    if not await can_see(principal, code, institutions) or await institutions.get(code) is None:
        raise not_found("institution")
    resolved = await policies.in_force(code, on or shanghai_today())
    return PolicyInForceOut.of(code, resolved)
