"""`neutralise_csv_cell`: no cell of a CSV the service writes runs as a spreadsheet formula
(OWASP "CSV Injection"), numbers stay numbers, and the original text is always recoverable."""

import csv
import io
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from complaintcore.projections.statistics.csv_return import neutralise_csv_cell

DANGEROUS_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

# Text biased towards the characters that matter: formula starts and the `'` mark itself.
cells = st.text(alphabet=st.sampled_from("=+-@\t\r\n'\"0123456789.,;aZ中()|! ")) | st.text()
number_cells = st.integers().map(str) | st.decimals(
    allow_nan=False, allow_infinity=False, places=2
).map(lambda d: f"{d:.2f}")


def recovered(cell: str) -> str:
    """The original text of a cell written by `neutralise_csv_cell`."""
    return cell[1:] if cell.startswith("'") else cell


@given(cells)
def test_no_text_cell_starts_like_a_formula(text: str) -> None:
    cell = neutralise_csv_cell(text)
    assert not cell.startswith(DANGEROUS_STARTS) or NUMBER.fullmatch(cell)


@given(cells)
def test_the_original_text_is_recoverable(text: str) -> None:
    assert recovered(neutralise_csv_cell(text)) == text


@given(cells)
def test_a_cell_is_changed_only_by_one_leading_mark(text: str) -> None:
    cell = neutralise_csv_cell(text)
    assert cell in (text, "'" + text)
    assert neutralise_csv_cell(text) == cell  # the same text always gives the same cell


@given(number_cells)
def test_numbers_stay_numbers(number: str) -> None:
    assert neutralise_csv_cell(number) == number
    assert Decimal(neutralise_csv_cell(number)) == Decimal(number)


@given(st.lists(cells, min_size=1, max_size=8))
def test_a_row_survives_the_csv_round_trip(row: list[str]) -> None:
    output = io.StringIO()
    csv.writer(output, lineterminator="\r\n").writerow(map(neutralise_csv_cell, row))
    (read,) = csv.reader(io.StringIO(output.getvalue(), newline=""))
    assert [recovered(cell) for cell in read] == row
    assert not any(cell.startswith(DANGEROUS_STARTS) for cell in read if not NUMBER.fullmatch(cell))


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("+1", "'+1"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("'=1+1", "''=1+1"),
        ("'", "''"),
        ("-", "'-"),
        ("中国银行", "中国银行"),
        ("BR-A", "BR-A"),
        ("a=1", "a=1"),
        ("", ""),
        ("-3", "-3"),
        ("12.50", "12.50"),
        ("2026-01-01", "2026-01-01"),
    ],
)
def test_examples(text: str, cell: str) -> None:
    assert neutralise_csv_cell(text) == cell
