"""`GET /v1/institutions/{code}/statistics.csv` over real HTTP: an institution named like a
spreadsheet formula comes out as text (a leading `'`, OWASP "CSV Injection"), never as a formula,
and the figures stay plain numbers."""

import csv
import io
import re

import pytest

from testsupport import LiveService

DANGEROUS_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
# code -> the name sent; the service strips surrounding blanks (the tab) before storing it.
FORMULA_NAMES = {
    "INJ-EQ": "=1+1",
    "INJ-AT": "@SUM(A1)",
    "INJ-MINUS": "-2+3",
    "INJ-TAB": "\t=cmd",
    "INJ-PLUS": '+HYPERLINK("http://x.test","y")',
    "INJ-MARK": "'=1+1",
}


@pytest.fixture(scope="module")
def statistics_csv(live: LiveService) -> list[dict[str, str]]:
    with live.client("admin") as admin:
        for code, name in FORMULA_NAMES.items():
            response = admin.put(
                f"/v1/institutions/{code}", json={"name": name, "kind": "branch", "parent": "HO"}
            )
            assert response.status_code == 201, response.text
    with live.client("regulator") as regulator:
        response = regulator.get(
            "/v1/institutions/HO/statistics.csv",
            params={"from": "2026-01-01", "to": "2026-06-30", "period": "quarter"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.text, newline="")))


def test_institution_names_like_formulas_come_out_as_text(
    statistics_csv: list[dict[str, str]],
) -> None:
    names = {row["institution"]: row["institution_name"] for row in statistics_csv}
    assert {code: names[code] for code in FORMULA_NAMES} == {
        "INJ-EQ": "'=1+1",
        "INJ-AT": "'@SUM(A1)",
        "INJ-MINUS": "'-2+3",
        "INJ-TAB": "'=cmd",
        "INJ-PLUS": '\'+HYPERLINK("http://x.test","y")',
        "INJ-MARK": "''=1+1",
    }
    assert names["HO"] == "总行"


def test_no_cell_of_the_data_return_starts_like_a_formula(
    statistics_csv: list[dict[str, str]],
) -> None:
    assert len(statistics_csv) == 2 * (len(FORMULA_NAMES) + 4)  # two quarters, every node
    for row in statistics_csv:
        for column, cell in row.items():
            assert NUMBER.fullmatch(cell) or not cell.startswith(DANGEROUS_STARTS), (column, cell)
        assert row["received"] == "0"
        assert row["handling_days_mean"] == ""
