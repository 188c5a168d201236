"""Reading reference data (institutions, calendars) from a JSON or a CSV file."""

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def read_json_or_csv(
    path: Path,
    from_json: Callable[[Any], list[T]],
    from_csv: Callable[[Iterable[str]], list[T]],
) -> list[T]:
    """Parse `path` by its suffix; a UTF-8 byte-order mark (Excel's CSV) is accepted."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return from_json(json.loads(path.read_text(encoding="utf-8-sig")))
    if suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as file:
            return from_csv(file)
    raise ValueError(f"{path.name}: expected a .json or .csv file")
