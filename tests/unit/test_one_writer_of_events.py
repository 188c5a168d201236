"""One writer of events: only the event store (`complaintcore/events/`) writes the `events` table,
so the hash chain, the guards, the position floor and the table's columns live in one place.
Anything else that must store events goes through `PostgresEventStore` (`append`, or
`append_streams` for many new streams at once)."""

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
EVENT_STORE = SRC / "complaintcore" / "events"

# INSERT INTO events, COPY events ... FROM, and asyncpg's copy_*_to_table("events", ...).
WRITE_TO_EVENTS = re.compile(
    r"""
      \binsert\s+into\s+(?:\w+\.)?"?events"?(?![\w"])
    | \bcopy\s+(?:\w+\.)?"?events"?(?![\w"])\s*(?:\([^)]*\)\s*)?from\b
    | \bcopy_\w+_table\(\s*(?:table_name\s*=\s*)?["'](?:\w+\.)?events["']
    """,
    re.IGNORECASE | re.VERBOSE,
)


def writes_to_events(root: Path) -> list[str]:
    """`path:line: text` of every write to `events` in the Python files under `root`."""
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for match in WRITE_TO_EVENTS.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{path.relative_to(SRC)}:{line}: {match.group(0).strip()}")
    return found


def test_nothing_outside_the_event_store_writes_events() -> None:
    outside = [
        write
        for write in writes_to_events(SRC)
        if not write.startswith(str(EVENT_STORE.relative_to(SRC)) + "/")
    ]
    assert outside == [], "write events through PostgresEventStore (append, append_streams)"


def test_the_scan_finds_the_event_stores_own_writes() -> None:
    found = writes_to_events(EVENT_STORE)
    assert any(write.startswith("complaintcore/events/store.py") for write in found)
    assert any(write.startswith("complaintcore/events/bulk.py") for write in found)


def test_the_pattern_knows_every_spelling_of_a_write_and_nothing_else() -> None:
    writes = [
        "INSERT INTO events (stream_id, version)",
        'insert into "events" (stream_id)',
        "INSERT INTO public.events\n(stream_id)",
        "COPY events (stream_id, version) FROM STDIN",
        'await connection.copy_records_to_table("events", records=rows)',
        "await connection.copy_to_table('events', source=path)",
        'connection.copy_records_to_table(\n    table_name="events", records=rows)',
    ]
    others = [
        "INSERT INTO events_archive (stream_id)",
        "INSERT INTO case_view SELECT * FROM events",
        'await connection.copy_records_to_table("case_view", records=rows)',
        "COPY events TO STDOUT",
        "COPY events (stream_id, hash) TO STDOUT",
        "the bulk import COPYs events no more",
    ]
    assert [bool(WRITE_TO_EVENTS.search(text)) for text in writes] == [True] * len(writes)
    assert [bool(WRITE_TO_EVENTS.search(text)) for text in others] == [False] * len(others)
