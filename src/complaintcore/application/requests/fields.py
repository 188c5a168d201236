"""Field types shared by the request and response models."""

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints
from pydantic_core import PydanticCustomError

from complaintcore.domain.roles import CODE_MAX_LENGTH, CODE_PATTERN

EARLIEST_BUSINESS_DATE = date(1990, 1, 1)
LATEST_BUSINESS_DATE = date(2100, 12, 31)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date_text(value: object) -> object:
    """Only `YYYY-MM-DD`: pydantic alone also takes a number (a Unix time) or a midnight
    timestamp as a date, which the schema's `format: date` does not allow."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise PydanticCustomError("date_format", "expected a YYYY-MM-DD date")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]


def _json_integer(value: object) -> object:
    """A number with no fraction, as JSON Schema counts integers (`2.0` is one, OpenAPI 3.1),
    as that integer; anything else is left for the strict check to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# JSON booleans and integers only: pydantic alone takes 0 and 1 for false and true, and a boolean
# or a numeric text for an integer, none of which the schema's types allow. An integer written
# `2.0` is one (found by a review pass: it was refused, against the schema).
Flag = Annotated[bool, Strict()]
Count = Annotated[int, Strict(), BeforeValidator(_json_integer)]

BusinessDate = Annotated[
    IsoDate,
    Field(
        ge=EARLIEST_BUSINESS_DATE,
        le=LATEST_BUSINESS_DATE,
        description="Asia/Shanghai business date, YYYY-MM-DD.",
    ),
]
# A text that says something: spaces around it are stripped (the characters of Unicode's
# White_Space, as pydantic strips them), so one of spaces alone is empty; the pattern says so in
# the schema, with those characters spelled out, since JSON Schema's `\s` is another set (found
# by a review pass: `"   "` matched the schema, then was refused as too short). The separators
# U+001C to U+001F alone say nothing either: Python's `str.strip`, which the domain and the
# reference data judge blankness by, strips them (a name of one was a 500, found the same way).
_STRIPPED = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SAYS_SOMETHING = rf"^[^\x00]*[^\x00\x1c-\x1f{_STRIPPED}][^\x00]*$"


def text_up_to(max_length: int) -> Any:
    """A text of at most `max_length` characters once stripped, with one that is not a space."""
    return Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=max_length, pattern=SAYS_SOMETHING
        ),
    ]


Text = text_up_to(20_000)
ShortText = text_up_to(200)
OptionalText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=20_000, pattern=r"^[^\x00]*$")
]
# An identity document's or a credit code's number, as written (checked by the domain rules).
DocumentNumber = Annotated[str, StringConstraints(max_length=64, pattern=r"^[^\x00]*$")]
Code = Annotated[
    str, StringConstraints(min_length=1, max_length=CODE_MAX_LENGTH, pattern=CODE_PATTERN)
]
Channel = Literal["phone", "online", "in_person", "letter", "email", "regulator_transfer"]
Fen = Annotated[Count, Field(ge=0, le=10**15, description="Money in integer fen (CNY/100).")]


class Body(BaseModel):
    """Request bodies refuse unknown fields, so a misspelt field is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")
