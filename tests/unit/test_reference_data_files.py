"""Reading the reference-data files of `complaintcore institutions load` and `calendar load`."""

import io
import json
from datetime import date
from pathlib import Path

import pytest

from complaintcore.reference.calendars import (
    calendars_from_csv,
    calendars_from_json,
    read_calendar_file,
)
from complaintcore.reference.institutions import (
    INSTITUTION_CYCLE,
    HierarchyRefused,
    InstitutionNode,
    institutions_from_csv,
    institutions_from_json,
    parents_first,
    read_institution_file,
)

TREE_CSV = """code,name,kind,parent
BOC-BJ-HD,中国银行北京海淀支行,sub_branch,BOC-BJ
BOC,中国银行,head_office,
BOC-BJ,中国银行北京市分行,branch,BOC
"""


def test_a_csv_tree_reads_with_an_empty_parent_as_none() -> None:
    nodes = institutions_from_csv(io.StringIO(TREE_CSV))
    assert nodes[1] == InstitutionNode("BOC", "中国银行", "head_office", None)
    assert [node.code for node in nodes] == ["BOC-BJ-HD", "BOC", "BOC-BJ"]


def test_a_json_tree_reads_the_same_nodes_as_the_csv() -> None:
    data = [
        {
            "code": "BOC-BJ-HD",
            "name": "中国银行北京海淀支行",
            "kind": "sub_branch",
            "parent": "BOC-BJ",
        },
        {"code": "BOC", "name": "中国银行", "kind": "head_office", "parent": None},
        {"code": "BOC-BJ", "name": "中国银行北京市分行", "kind": "branch", "parent": "BOC"},
    ]
    assert institutions_from_json(data) == institutions_from_csv(io.StringIO(TREE_CSV))


def test_files_are_read_by_their_suffix_and_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    csv_file = tmp_path / "tree.csv"
    csv_file.write_text(TREE_CSV, encoding="utf-8-sig")
    assert len(read_institution_file(csv_file)) == 3
    with pytest.raises(ValueError, match=r"expected a \.json or \.csv"):
        read_institution_file(tmp_path / "tree.xlsx")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("code,name,kind\nA,甲,head_office\n", "header"),
        ("code,name,kind,parent\nA B,甲,head_office,\n", "line 2: code"),
        ("code,name,kind,parent\nA,甲,bank,\n", "line 2: kind"),
        # a cell more than the header: no row of the file is read past it
        ("code,name,kind,parent\n,,,,x\n", "line 2: 5 cells, the header has 4"),
        ("code,name,kind,parent\nA,甲,head_office,,extra,more\n", "line 2: 6 cells"),
    ],
)
def test_a_bad_csv_row_is_named_by_its_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        institutions_from_csv(io.StringIO(text))


def test_a_json_item_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValueError, match="item 0: unknown field"):
        institutions_from_json([{"code": "A", "name": "甲", "kind": "head_office", "type": "x"}])


def test_parents_come_first_and_others_keep_their_order() -> None:
    nodes = institutions_from_csv(io.StringIO(TREE_CSV))
    assert [node.code for node in parents_first(nodes)] == ["BOC", "BOC-BJ", "BOC-BJ-HD"]


def test_a_parent_outside_the_file_does_not_hold_a_node_back() -> None:
    nodes = [InstitutionNode("X-1", "甲", "sub_branch", "ALREADY-STORED")]
    assert parents_first(nodes) == nodes


def test_a_loop_in_the_file_is_refused() -> None:
    nodes = [InstitutionNode("A", "甲", "branch", "B"), InstitutionNode("B", "乙", "branch", "A")]
    with pytest.raises(HierarchyRefused) as refused:
        parents_first(nodes)
    assert refused.value.code == INSTITUTION_CYCLE


def test_a_code_given_twice_is_refused() -> None:
    node = InstitutionNode("A", "甲", "head_office")
    with pytest.raises(ValueError, match="twice"):
        parents_first([node, node])


CALENDAR_CSV = """date,kind
2027-01-01,holiday
2028-01-01,holiday
2027-02-20,working_day
"""


def test_a_calendar_csv_is_grouped_by_year() -> None:
    years = calendars_from_csv(io.StringIO(CALENDAR_CSV))
    assert [(year.year, year.holidays, year.adjusted_working_days) for year in years] == [
        (2027, {date(2027, 1, 1)}, {date(2027, 2, 20)}),
        (2028, {date(2028, 1, 1)}, frozenset()),
    ]


def test_a_calendar_json_may_be_one_year_or_a_list(tmp_path: Path) -> None:
    year = {"year": 2027, "holidays": ["2027-01-01"], "adjusted_working_days": ["2027-02-20"]}
    file = tmp_path / "2027.json"
    file.write_text(json.dumps(year))
    assert read_calendar_file(file) == calendars_from_json([year])
    assert read_calendar_file(file) == calendars_from_csv(io.StringIO(CALENDAR_CSV))[:1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2027-01-01,feast\n", "line 1: kind"),
        ("20270101,holiday\n", "line 1: '20270101' is not a YYYY-MM-DD date"),
        ("2027-01-04,working_day\n", "Monday"),
        ("1948-01-01,holiday\n", "outside 1949..2100"),
    ],
)
def test_a_bad_calendar_csv_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        calendars_from_csv(io.StringIO(text))


def test_a_calendar_json_year_given_twice_is_refused() -> None:
    year = {"year": 2027, "holidays": [], "adjusted_working_days": []}
    with pytest.raises(ValueError, match="twice"):
        calendars_from_json([year, year])
