"""`/v1/institutions/{code}`: the institution tree (API.md "Queries"; DOMAIN.md "Words")."""

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Path, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from complaintcore.api.auth import AdminPrincipal, CurrentPrincipal, can_see
from complaintcore.api.deps import Institutions
from complaintcore.api.json_bodies import ExactJsonRoute
from complaintcore.api.problems import Problem, not_found, problem_responses
from complaintcore.api.response_headers import location_header
from complaintcore.application.requests.fields import text_up_to
from complaintcore.reference.institutions import (
    INSTITUTION_CODE_PATTERN,
    MAX_INSTITUTION_CODE_LENGTH,
    MAX_INSTITUTION_NAME_LENGTH,
    HierarchyRefused,
    Institution,
    InstitutionKind,
)

log = structlog.get_logger("complaintcore.api.institutions")

router = APIRouter(prefix="/v1/institutions", tags=["institutions"], route_class=ExactJsonRoute)

InstitutionCode = Annotated[
    str,
    StringConstraints(pattern=INSTITUTION_CODE_PATTERN, max_length=MAX_INSTITUTION_CODE_LENGTH),
]
CodePath = Annotated[
    str,
    Path(
        pattern=INSTITUTION_CODE_PATTERN,
        max_length=MAX_INSTITUTION_CODE_LENGTH,
        description="The node's code: 1 to 64 letters, digits, `-` or `_`.",
        examples=["BOC-BJ"],
    ),
]


class InstitutionBody(BaseModel):
    """A node of the tree as an admin puts it."""

    model_config = ConfigDict(extra="forbid")

    name: text_up_to(MAX_INSTITUTION_NAME_LENGTH) = Field(  # type: ignore[valid-type]
        description="The institution's name, e.g. 中国银行北京市分行."
    )
    kind: InstitutionKind = Field(
        description="`head_office` (总行/总公司), `branch` (分行/分公司) or "
        "`sub_branch` (支行/支公司)."
    )
    parent: InstitutionCode | None = Field(
        default=None,
        description="The superior node's code: absent for a head office, required otherwise. "
        "A sub-branch has no children.",
    )


class InstitutionView(BaseModel):
    """A node with its parent and its children's codes."""

    code: str = Field(description="The node's code.")
    name: str = Field(description="The institution's name.")
    kind: InstitutionKind = Field(description="`head_office`, `branch` or `sub_branch`.")
    parent: str | None = Field(description="The superior node's code; null for a head office.")
    children: list[str] = Field(description="The codes of the nodes directly under this one.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "BOC-BJ",
                    "name": "中国银行北京市分行",
                    "kind": "branch",
                    "parent": "BOC",
                    "children": ["BOC-BJ-HD", "BOC-BJ-XC"],
                }
            ]
        }
    )

    @classmethod
    def of(cls, institution: Institution) -> "InstitutionView":
        return cls(
            code=institution.code,
            name=institution.name,
            kind=InstitutionKind(institution.kind),
            parent=institution.parent,
            children=list(institution.children),
        )


INSTITUTION_BODY_EXAMPLES: dict[str, Any] = {
    "head_office": {
        "summary": "A head office (no parent)",
        "value": {"name": "中国银行", "kind": "head_office"},
    },
    "branch": {
        "summary": "A branch under the head office",
        "value": {"name": "中国银行北京市分行", "kind": "branch", "parent": "BOC"},
    },
    "sub_branch": {
        "summary": "A sub-branch under a branch",
        "value": {"name": "中国银行北京海淀支行", "kind": "sub_branch", "parent": "BOC-BJ"},
    },
}


@router.put(
    "/{code}",
    operation_id="put_institution",
    response_model=InstitutionView,
    response_description="The node was updated.",
    responses={
        201: {
            "model": InstitutionView,
            "description": "The node was created.",
            "headers": location_header("The node: `/v1/institutions/{code}`."),
        },
        **problem_responses(401, 403, 409, 422, 503),
    },
)
async def put_institution(
    code: CodePath,
    body: Annotated[InstitutionBody, Body(openapi_examples=INSTITUTION_BODY_EXAMPLES)],
    admin: AdminPrincipal,
    institutions: Institutions,
    response: Response,
) -> InstitutionView:
    """Create (201) or update (200) a node of the institution tree. Admin only.

    A head office has no parent; a branch or sub-branch names an existing parent, which is not a
    sub-branch. Refusals are 409 with the rule's code: `unknown_parent`, `institution_cycle` (the
    parent is the node itself or one of its descendants) or `invalid_hierarchy`.
    """
    try:
        institution, created = await institutions.put(code, body.name, body.kind, body.parent)
    except HierarchyRefused as refusal:
        raise Problem(
            409, refusal.code, "Refused by the institution tree", refusal.message
        ) from None
    if created:
        response.status_code = 201
        response.headers["Location"] = f"{router.prefix}/{code}"
    log.info("institution stored", institution=code, created=created, actor=admin.id)
    return InstitutionView.of(institution)


@router.get(
    "/{code}",
    operation_id="get_institution",
    response_model=InstitutionView,
    response_description="The node with its parent and children.",
    responses=problem_responses(401, 404, 422, 503),
)
async def get_institution(
    code: CodePath, principal: CurrentPrincipal, institutions: Institutions
) -> InstitutionView:
    """A node of the institution tree with its parent and children.

    Staff and supervisors see only their own institution's subtree; any other node is 404, as if
    it did not exist. Regulators and admins see every node.
    """
    if not await can_see(principal, code, institutions):
        raise not_found("institution")
    institution = await institutions.get(code)
    if institution is None:
        raise not_found("institution")
    return InstitutionView.of(institution)
