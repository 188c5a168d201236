"""The request fields take what their schema in openapi.yaml allows, and refuse what it does
not (found by a review pass with schemathesis: `2.0` is an integer in OpenAPI 3.1 and was
refused; a text of spaces alone matched the schema and was refused)."""

import re
from decimal import Decimal
from typing import Annotated

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from complaintcore.api.routes.institutions import InstitutionBody
from complaintcore.application.requests.fields import Count, Fen, ShortText, Text
from complaintcore.application.requests.json_numbers import loads_exact

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


@given(
    whole=st.integers(0, 10**15),
    fraction=st.text("0123456789", max_size=25),
    exponent=st.sampled_from(["", "e0", "E+0", "e-1", "e2", "E-20"]),
)
@example(whole=99999, fraction="99999999999999", exponent="")
@example(whole=100000, fraction="0", exponent="")
@example(whole=1, fraction="", exponent="E5")
def test_a_number_written_with_a_fraction_is_fen_exactly_when_it_is_an_integer(
    whole: int, fraction: str, exponent: str
) -> None:
    """Found by a review pass: `99999.99999999999999`, which a double rounds to 100000.0, was
    taken as 100,000 fen; a body is read with each number as written."""
    literal = f"{whole}{f'.{fraction}' if fraction else ''}{exponent}"
    written = Decimal(literal)
    body = loads_exact(f'{{"redress_fen": {literal}}}'.encode())
    if written == written.to_integral_value() and 0 <= written <= 10**15:
        assert FEN.validate_python(body["redress_fen"]) == int(written)
    else:
        with pytest.raises(ValidationError):
            FEN.validate_python(body["redress_fen"])


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


@pytest.mark.parametrize("number", [b"2.5", b"2.0"])
def test_a_deeply_nested_document_is_read_or_refused_as_no_json_never_a_crash(
    number: bytes,
) -> None:
    """Found by a review pass: the walk looking for floats recursed, and a body 400 deep was a
    500 (an import line, a traceback). A document the json module cannot read again so deep is
    refused as orjson refuses one deeper still."""
    for depth in (400, 1000):
        document = b"[" * depth + number + b"]" * depth
        try:
            value = loads_exact(document)
        except orjson.JSONDecodeError:
            assert number == b"2.0" and depth == 1000
            continue
        for _ in range(depth):
            value = value[0]
        assert value == float(number)
