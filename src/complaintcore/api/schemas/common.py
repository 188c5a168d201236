"""Field types shared by the request and response models."""

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

EARLIEST_BUSINESS_DATE = date(1990, 1, 1)
LATEST_BUSINESS_DATE = date(2100, 12, 31)

BusinessDate = Annotated[
    date,
    Field(
        ge=EARLIEST_BUSINESS_DATE,
        le=LATEST_BUSINESS_DATE,
        description="Asia/Shanghai business date, YYYY-MM-DD.",
    ),
]
Text = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=20_000, pattern=r"^[^\x00]*$"
    ),
]
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00]*$"),
]
OptionalText = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=20_000, pattern=r"^[^\x00]*$")
]
Code = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"),
]
Fen = Annotated[int, Field(ge=0, le=10**15, description="Money in integer fen (CNY/100).")]


class Body(BaseModel):
    """Request bodies refuse unknown fields, so a misspelt field is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")
