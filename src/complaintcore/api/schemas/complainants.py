"""The request and response models of the complainant search (API.md "Personal data",
`POST /v1/complainants/search`)."""

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from complaintcore.application.requests.fields import Body
from complaintcore.crypto.blind_index import normalised_number
from complaintcore.domain.commands import CREDIT_CODE_DOCUMENT, IdType
from complaintcore.domain.state import CaseStatus

# As long as a stored number may be (`requests.fields.DocumentNumber`), with room for the spaces
# and dashes a number is typed with; no NUL.
SearchedNumber = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00]*$")
]


# an identity document's type, or a legal person's credit code: one enumeration, one field error
SearchedDocument = Literal[(*(kind.value for kind in IdType), CREDIT_CODE_DOCUMENT)]  # type: ignore[valid-type]


class ComplainantSearchBody(Body):
    """An identity document as the complainant gives it. Every spelling of one number finds the
    same cases: full-width digits, spaces, dashes and the case of letters do not matter."""

    id_type: SearchedDocument = Field(
        description="The document's type; a legal person (a company) is found by "
        "`unified_social_credit_code`."
    )
    id_number: SearchedNumber = Field(
        description="The number, in the body only (never in a URL): it is hashed under the "
        "deployment's blind-index key and neither stored nor logged."
    )
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"id_type": "resident_id", "id_number": "110105 19491231 002x"}]
        },
    )

    @field_validator("id_number")
    @classmethod
    def _identifies_someone(cls, value: str) -> str:
        """A number of spaces and dashes only identifies no one: 422 rather than no cases."""
        if not normalised_number(value):
            raise PydanticCustomError(
                "empty_number", "the number is empty once spaces and dashes are removed"
            )
        return value


class ComplainantCaseOut(BaseModel):
    id: str
    registration_no: str
    status: CaseStatus
    received_on: date


class ComplainantCasesOut(BaseModel):
    items: list[ComplainantCaseOut] = Field(
        description="The complainant's cases in the caller's subtree, by receipt date then id; "
        "none for an erased case."
    )
    next_cursor: str | None = Field(
        description="Pass as `cursor`, with the same body, for the next page; null at the end."
    )
