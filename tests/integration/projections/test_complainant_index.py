"""`case_view.complainant_index`, the blind index of the complainant's identity document, is the
same whoever writes the row: a command, the bulk import, a rebuild's scan or its catch-up
(DOMAIN.md "Personal data", Repeat complainants); None once the case is erased."""

from dataclasses import replace
from datetime import date

import asyncpg
import orjson
import pytest

from complaintcore.application.bulk_import import (
    ActorBody,
    BulkImporter,
    case_id_for,
    load_reference_data,
    numbered_lines,
)
from complaintcore.application.complaint_service import Rendered, RequestInfo
from complaintcore.auth.principals import Principal
from complaintcore.crypto.blind_index import IndexKey, blind_index
from complaintcore.crypto.keys import FileKeyProvider
from complaintcore.domain.commands import ErasePersonalData
from complaintcore.events.store import PostgresEventStore
from complaintcore.projections.case_view import case_view_row, load_index_key, upsert_case_view
from complaintcore.projections.rebuild import (
    TARGETS,
    Rebuilder,
    RebuildSettings,
    SilentProgress,
    rebuild,
)
from projection_support import STAFF, CaseDesk, table_rows
from testsupport import session_case_keys, session_master_key_file

NUMBER = "11010519491231002X"  # CaseDesk's complainant
ADMIN = Principal("admin-1", "admin", None)
ONE_PROCESS = RebuildSettings(page_events=3, flush_rows=2, scan_workers=1)


class StopAfterTheScan(Exception):
    pass


class StoppingAfterTheScan(SilentProgress):
    def phase(self, name: str, text: str) -> None:
        if text.startswith("building indexes"):
            raise StopAfterTheScan


async def the_index_key(pool: asyncpg.Pool) -> IndexKey:
    async with pool.acquire() as connection:
        provider = FileKeyProvider(session_master_key_file())
        return await load_index_key(connection, provider, "aes-256-gcm")


async def indexes(pool: asyncpg.Pool) -> dict[str, str | None]:
    rows = await pool.fetch("SELECT case_id, complainant_index FROM case_view")
    return {row["case_id"]: row["complainant_index"] for row in rows}


def _nothing(*_: object) -> Rendered:
    return Rendered(200, None, {})


async def an_erased_case(desk: CaseDesk) -> str:
    """Closed in 2019 (withdrawn), erased in 2026: past the 5 years of retention."""
    case_id = await desk.receive("BR-A", date(2019, 3, 4))
    await desk.withdraw(case_id, date(2019, 3, 5))
    desk.today = date(2026, 1, 5)
    erase = ErasePersonalData(desk.today, "保存期限届满", "《个人信息保护法》第四十七条")
    await desk.service.handle(ADMIN, case_id, erase, None, RequestInfo(), _nothing)
    return case_id


async def import_one_case(pool: asyncpg.Pool, number_as_typed: str) -> str:
    document = {
        "external_id": "LEGACY-1",
        "respondent_institution": "BR-A",
        "channel": "phone",
        "received_on": "2026-01-06",
        "complainant": {
            "kind": "natural_person",
            "name": "张三",
            "id_type": "resident_id",
            "id_number": number_as_typed,
            "contact": "13800138000",
        },
        "claims": "退还年费",
        "facts": "未经同意扣收年费",
        "category": {"business": "credit_card", "reason": "pricing_and_fees"},
        "actor": {"id": "staff-ho", "role": "staff", "institution": "HO"},
        "actions": [],
    }
    async with pool.acquire() as connection:
        reference = await load_reference_data(
            connection, date(2026, 1, 6), ActorBody(id="import", role="staff"), "import-test"
        )
        importer = BulkImporter(
            connection, PostgresEventStore(pool), reference, session_case_keys()
        )
        report = await importer.run(numbered_lines([orjson.dumps(document)]))
    assert (report.cases_imported, report.refusals) == (1, [])
    return case_id_for("LEGACY-1")


async def test_commands_the_bulk_import_and_a_rebuild_write_one_index(
    pool: asyncpg.Pool, database_url: str
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    live_cases = [await desk.receive(code, date(2026, 1, 5)) for code in ("HO", "BR-B")]
    erased = await an_erased_case(desk)
    imported = await import_one_case(pool, "11010519491231002x")

    expected = blind_index(await the_index_key(pool), "resident_id", NUMBER)
    written = await indexes(pool)
    assert [written[case_id] for case_id in (*live_cases, imported)] == [expected] * 3
    assert written[erased] is None
    live = await table_rows(pool, "case_view")

    await rebuild(database_url, ["case_view"], settings=ONE_PROCESS)
    assert await table_rows(pool, "case_view") == live


async def test_the_catch_up_writes_the_index_of_what_came_meanwhile(
    pool: asyncpg.Pool, database_url: str
) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    first = await desk.receive("BR-A", date(2026, 1, 5))
    with pytest.raises(StopAfterTheScan):
        await Rebuilder(
            database_url, [TARGETS["case_view"]], StoppingAfterTheScan(), ONE_PROCESS
        ).run()
    # written after the scan: only the catch-up takes these in
    meanwhile = await desk.receive("BR-B", date(2026, 1, 6))
    erased = await an_erased_case(desk)
    live = await table_rows(pool, "case_view")

    [result] = await rebuild(database_url, ["case_view"], settings=ONE_PROCESS)

    assert result.resumed
    assert await table_rows(pool, "case_view") == live
    written = await indexes(pool)
    assert written[first] == written[meanwhile] is not None
    assert written[erased] is None


async def test_a_row_needs_the_key_unless_there_is_nothing_to_index(pool: asyncpg.Pool) -> None:
    desk = CaseDesk(pool)
    await desk.plant_tree()
    case_id = await desk.receive("BR-A", date(2026, 1, 5))
    state, _, _ = await desk.service.case(STAFF, case_id)
    with pytest.raises(ValueError, match="blind index's key"):
        case_view_row(state, None)
    erased = replace(state, personal_data_erased=True)
    assert case_view_row(erased, None)["complainant_index"] is None
    async with pool.acquire() as connection:
        with pytest.raises(ValueError, match="blind index's key"):
            await upsert_case_view(connection, state)
        await upsert_case_view(connection, erased)  # the erasure sweep's call
    assert (await indexes(pool))[case_id] is None
    key = await the_index_key(pool)
    for id_type, number in (
        (state.complainant.id_type, ""),
        (state.complainant.id_type, " - －"),
        (None, NUMBER),
    ):
        nothing_to_index = replace(
            state, complainant=replace(state.complainant, id_type=id_type, id_number=number)
        )
        assert case_view_row(nothing_to_index, key)["complainant_index"] is None
        assert case_view_row(nothing_to_index, None)["complainant_index"] is None
