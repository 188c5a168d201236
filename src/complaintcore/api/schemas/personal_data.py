"""Response models of the personal data routes (API.md "Personal data")."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field


class RevealedEventOut(BaseModel):
    version: int = Field(ge=1, description="The event's version in the case's stream.")
    type: str = Field(description="The event type, e.g. `ComplaintReceived`.")
    fields: dict[str, str] = Field(
        description="The event's personal values in plaintext, by JSON Pointer (RFC 6901) into "
        'its payload: `"/complainant/name"`, `"/respondent_staff/0/name"`.'
    )


class PersonalDataOut(BaseModel):
    case_id: str
    personal_data: Literal["held"]
    events: list[RevealedEventOut] = Field(
        description="Each event of the case with personal fields, in version order."
    )


class PersonalDataAccessOut(BaseModel):
    at: datetime = Field(description="When the reveal was made.")
    actor: str = Field(description="The id of the principal who asked.")
    role: str
    institution: str | None = Field(description="The actor's institution (staff, supervisors).")
    case_id: str
    purpose: str = Field(description="The purpose the actor stated.")


class PersonalDataAccessListOut(BaseModel):
    items: list[PersonalDataAccessOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: none.")
