"""Building and changing frozen dataclasses without going through their generated `__init__`.

A frozen dataclass's `__init__` sets each field through `object.__setattr__`, and
`dataclasses.replace` goes through it again with every field; folding a million events does that
tens of millions of times. The domain's frozen dataclasses are plain records (no `__post_init__`,
no `__slots__`), so a new instance can be made by filling its `__dict__` directly: equal, and
several times cheaper (the event decoders in `events` build instances the same way). Only for such
records: nothing here runs validation.
"""

import dataclasses
from typing import Any, TypeVar

Record = TypeVar("Record")


def changed(record: Record, **changes: Any) -> Record:
    """`dataclasses.replace(record, **changes)` for a plain frozen record."""
    attributes = record.__dict__
    if not changes.keys() <= attributes.keys():
        unknown = sorted(changes.keys() - attributes.keys())
        raise TypeError(f"{type(record).__name__} has no field {unknown}")
    instance = object.__new__(type(record))
    instance.__dict__.update(attributes)
    instance.__dict__.update(changes)
    return instance


def built(cls: type[Record], **fields: Any) -> Record:
    """`cls(**fields)` for a plain frozen record, its defaults filled in."""
    defaults, names = _shape(cls)
    instance = object.__new__(cls)
    attributes = instance.__dict__
    attributes.update(defaults)
    attributes.update(fields)
    if len(attributes) != len(names):
        missing, unknown = sorted(names - attributes.keys()), sorted(attributes.keys() - names)
        raise TypeError(f"{cls.__name__}: missing fields {missing}, unknown fields {unknown}")
    return instance


_SHAPES: dict[type, tuple[dict[str, Any], frozenset[str]]] = {}


def _shape(cls: type) -> tuple[dict[str, Any], frozenset[str]]:
    """The record's plain defaults and all its field names (a default factory is not plain)."""
    if cls not in _SHAPES:
        fields = dataclasses.fields(cls)
        if any(field.default_factory is not dataclasses.MISSING for field in fields):
            raise TypeError(f"{cls.__name__} has a default factory: build it with its __init__")
        defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
        _SHAPES[cls] = defaults, frozenset(f.name for f in fields)
    return _SHAPES[cls]
