"""JSON documents read with each number as written: money is integer fen (API.md
"Conventions"), and a number written with a fraction that a double rounds to an integer
(`99999.99999999999999`) must be refused as no integer, not taken as the integer it rounds to
(found by a review pass: it was recorded as a decision of 100,000 fen).

orjson reads every document first, as fast as ever; only one holding a float with no fraction
(`2.0` and `1E5` are integers, as JSON Schema counts them) is read again by the json module,
which hands each such literal over as written: a float when the float is the number written,
else the exact `Decimal`, which no integer field takes.
"""

import json
from decimal import Decimal
from typing import Any

import orjson


def loads_exact(document: bytes | str) -> Any:
    """The JSON `document` (UTF-8), numbers as written; orjson's `JSONDecodeError` (a
    `ValueError`) for one it refuses."""
    value = orjson.loads(document)
    if not _holds_an_integral_float(value):
        return value
    try:
        return json.loads(document, parse_float=number_as_written)
    except RecursionError:
        # deeper than the json module reads: refused as no JSON, as orjson refuses deeper still
        raise orjson.JSONDecodeError("the document is nested too deep", "", 0) from None


def _holds_an_integral_float(document: Any) -> bool:
    # a walk with a stack of its own, not recursion: orjson reads 1,024 levels, deeper than
    # Python's recursion reaches (found by a review pass: a body 400 deep was a 500)
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, float):
            if value.is_integer():
                return True
        elif isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def number_as_written(literal: str) -> float | Decimal:
    """A JSON number literal with a fraction or an exponent (`parse_float` of the json module)."""
    value = float(literal)
    if value.is_integer() and Decimal(literal) != Decimal(value):
        return Decimal(literal)
    return value
