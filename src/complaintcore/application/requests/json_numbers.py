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
    if _holds_an_integral_float(value):
        return json.loads(document, parse_float=number_as_written)
    return value


def _holds_an_integral_float(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(_holds_an_integral_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_an_integral_float(item) for item in value)
    return False


def number_as_written(literal: str) -> float | Decimal:
    """A JSON number literal with a fraction or an exponent (`parse_float` of the json module)."""
    value = float(literal)
    if value.is_integer() and Decimal(literal) != Decimal(value):
        return Decimal(literal)
    return value
