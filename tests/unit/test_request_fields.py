"""The request fields take what their schema in openapi.yaml allows, and refuse what it does
not (found by a review pass with schemathesis: `2.0` is an integer in OpenAPI 3.1 and was
refused; a text of spaces alone matched the schema and was refused)."""

import re
from typing import Annotated

import pytest
from pydantic import TypeAdapter, ValidationError

from complaintcore.api.routes.institutions import InstitutionBody
from complaintcore.application.requests.fields import Count, Fen, ShortText, Text

COUNT = TypeAdapter(Count)
FEN = TypeAdapter(Fen)


@pytest.mark.parametrize("number", [0, 32, 32.0, 1e3])
def test_an_integer_is_taken_however_json_writes_it(number: float) -> None:
    assert COUNT.validate_json(str(number).encode()) == int(number)
    assert type(FEN.validate_python(number)) is int


@pytest.mark.parametrize("value", [32.5, True, "32", float("inf"), float("nan"), None])
def test_anything_else_is_not_an_integer(value: object) -> None:
    with pytest.raises(ValidationError):
        COUNT.validate_python(value)


INSTITUTION_NAME = InstitutionBody.model_fields["name"]


@pytest.mark.parametrize(
    "field",
    [Text, ShortText, Annotated[str, *INSTITUTION_NAME.metadata]],
    ids=["text", "short text", "institution name"],
)
def test_a_text_of_spaces_alone_is_refused_and_the_schema_says_so(field: object) -> None:
    adapter = TypeAdapter(field)
    pattern = re.compile(adapter.json_schema()["pattern"])
    # what pydantic strips (Unicode's White_Space), where JSON Schema's \s differs from it, and
    # the separators U+001C to U+001F, which Python's str.strip takes for spaces
    for blank in ("   ", "\u3000", "\t\n", "\x85", "\x1c", " \x1d ", "\x1f"):
        with pytest.raises(ValidationError):
            adapter.validate_python(blank)
        assert pattern.search(blank) is None
    for text in (" 退还年费 ", "a"):
        assert adapter.validate_python(text) == text.strip()
        assert pattern.search(text) is not None
    assert pattern.search("a\x00") is None
    for kept in ("\ufeff", "a\x1c"):  # not stripped: kept, and a text as the schema says
        assert adapter.validate_python(kept) == kept
        assert pattern.search(kept) is not None
