"""The institution directory on PostgreSQL: a forest of proper trees, read in one query each."""

import asyncio

import asyncpg
import pytest

from complaintcore.reference.institutions import (
    INSTITUTION_CYCLE,
    INVALID_HIERARCHY,
    UNKNOWN_PARENT,
    HierarchyRefused,
    Institution,
    InstitutionDirectory,
    InstitutionNode,
)


@pytest.fixture
async def directory(pool: asyncpg.Pool) -> InstitutionDirectory:
    """ICBC head office → Beijing and Shanghai branches → two Beijing sub-branches."""
    directory = InstitutionDirectory(pool)
    await directory.put("ICBC", "中国工商银行", "head_office")
    await directory.put("ICBC-BJ", "北京市分行", "branch", "ICBC")
    await directory.put("ICBC-SH", "上海市分行", "branch", "ICBC")
    await directory.put("ICBC-BJ-HD", "海淀支行", "sub_branch", "ICBC-BJ")
    await directory.put("ICBC-BJ-XC", "西城支行", "sub_branch", "ICBC-BJ")
    return directory


async def refusal_code(directory: InstitutionDirectory, *node: str | None) -> str:
    with pytest.raises(HierarchyRefused) as refused:
        await directory.put(*node)  # type: ignore[arg-type]
    return refused.value.code


async def test_a_node_is_read_back_with_its_parent_and_children_in_code_order(
    directory: InstitutionDirectory,
) -> None:
    assert await directory.get("ICBC-BJ") == Institution(
        code="ICBC-BJ",
        name="北京市分行",
        kind="branch",
        parent="ICBC",
        children=("ICBC-BJ-HD", "ICBC-BJ-XC"),
    )
    head_office = await directory.get("ICBC")
    assert head_office is not None
    assert head_office.parent is None
    assert head_office.children == ("ICBC-BJ", "ICBC-SH")


async def test_an_unknown_code_reads_as_none(directory: InstitutionDirectory) -> None:
    assert await directory.get("NOPE") is None


async def test_put_tells_a_creation_from_an_update_and_updates_in_place(
    directory: InstitutionDirectory,
) -> None:
    created = await directory.put("ICBC-GZ", "广州分行", "branch", "ICBC")
    updated = await directory.put("ICBC-GZ", "广东省分行", "branch", "ICBC")
    assert created[1] is True
    assert updated == (
        Institution("ICBC-GZ", "广东省分行", "branch", "ICBC", ()),
        False,
    )


async def test_a_node_can_move_to_another_parent(directory: InstitutionDirectory) -> None:
    await directory.put("ICBC-BJ-HD", "海淀支行", "sub_branch", "ICBC-SH")
    assert await directory.superior_of("ICBC-BJ-HD") == "ICBC-SH"
    beijing = await directory.get("ICBC-BJ")
    assert beijing is not None
    assert beijing.children == ("ICBC-BJ-XC",)


async def test_a_parent_that_does_not_exist_is_refused(directory: InstitutionDirectory) -> None:
    assert await refusal_code(directory, "X-1", "某支行", "sub_branch", "GHOST") == UNKNOWN_PARENT
    assert await directory.get("X-1") is None


@pytest.mark.parametrize(
    ("kind", "parent"),
    [("head_office", "ICBC"), ("branch", None), ("sub_branch", None), ("branch", "ICBC-BJ-HD")],
    ids=["head office with a parent", "branch without", "sub-branch without", "under a sub-branch"],
)
async def test_a_shape_the_tree_does_not_allow_is_refused(
    directory: InstitutionDirectory, kind: str, parent: str | None
) -> None:
    assert await refusal_code(directory, "NEW", "新机构", kind, parent) == INVALID_HIERARCHY
    assert await directory.get("NEW") is None


async def test_a_node_with_children_cannot_become_a_sub_branch(
    directory: InstitutionDirectory,
) -> None:
    refused = await refusal_code(directory, "ICBC-BJ", "北京市分行", "sub_branch", "ICBC")
    assert refused == INVALID_HIERARCHY


async def test_a_node_cannot_hang_under_itself_or_its_descendants(
    directory: InstitutionDirectory,
) -> None:
    assert (
        await refusal_code(directory, "ICBC-SH", "上海", "branch", "ICBC-SH") == INSTITUTION_CYCLE
    )
    await directory.put("ICBC-BJ-2", "北京二级分行", "branch", "ICBC-BJ")
    assert await refusal_code(directory, "ICBC-BJ", "北京", "branch", "ICBC-BJ-2") == (
        INSTITUTION_CYCLE
    )
    assert await directory.superior_of("ICBC-BJ") == "ICBC"


async def test_two_racing_moves_cannot_close_a_loop_between_them(
    directory: InstitutionDirectory,
) -> None:
    results = await asyncio.gather(
        directory.put("ICBC-BJ", "北京市分行", "branch", "ICBC-SH"),
        directory.put("ICBC-SH", "上海市分行", "branch", "ICBC-BJ"),
        return_exceptions=True,
    )
    refusals = [result for result in results if isinstance(result, HierarchyRefused)]
    assert len(refusals) == 1
    assert refusals[0].code == INSTITUTION_CYCLE
    assert await directory.is_within("ICBC", "ICBC-BJ")
    assert await directory.is_within("ICBC", "ICBC-SH")


async def test_subtree_is_the_node_then_every_descendant(directory: InstitutionDirectory) -> None:
    assert await directory.subtree("ICBC") == [
        "ICBC",
        "ICBC-BJ",
        "ICBC-BJ-HD",
        "ICBC-BJ-XC",
        "ICBC-SH",
    ]
    assert await directory.subtree("ICBC-BJ") == ["ICBC-BJ", "ICBC-BJ-HD", "ICBC-BJ-XC"]
    assert await directory.subtree("ICBC-SH") == ["ICBC-SH"]
    assert await directory.subtree("NOPE") == []


@pytest.mark.parametrize(
    ("ancestor", "code", "within"),
    [
        ("ICBC", "ICBC-BJ-HD", True),
        ("ICBC-BJ", "ICBC-BJ-HD", True),
        ("ICBC-BJ", "ICBC-BJ", True),
        ("ICBC-SH", "ICBC-BJ-HD", False),
        ("ICBC-BJ-HD", "ICBC-BJ", False),
        ("ICBC-BJ-HD", "ICBC-BJ-XC", False),
        ("ICBC", "NOPE", False),
    ],
)
async def test_is_within_follows_the_tree_downwards_only(
    directory: InstitutionDirectory, ancestor: str, code: str, within: bool
) -> None:
    assert await directory.is_within(ancestor, code) is within


async def test_the_superior_is_the_parent_and_a_head_office_has_none(
    directory: InstitutionDirectory,
) -> None:
    assert await directory.superior_of("ICBC-BJ-HD") == "ICBC-BJ"
    assert await directory.superior_of("ICBC-BJ") == "ICBC"
    assert await directory.superior_of("ICBC") is None
    assert await directory.superior_of("NOPE") is None


@pytest.mark.parametrize(
    ("code", "lineage"),
    [
        ("ICBC-BJ-HD", ("ICBC-BJ-HD", "ICBC-BJ", "ICBC")),
        ("ICBC-SH", ("ICBC-SH", "ICBC")),
        ("ICBC", ("ICBC",)),
        ("NOPE", ()),
    ],
)
async def test_the_lineage_runs_from_the_node_up_to_its_head_office(
    directory: InstitutionDirectory, code: str, lineage: tuple[str, ...]
) -> None:
    assert await directory.lineage(code) == lineage


async def test_the_lineage_answers_as_is_within_and_superior_of_do(
    directory: InstitutionDirectory,
) -> None:
    codes = ["ICBC", "ICBC-BJ", "ICBC-SH", "ICBC-BJ-HD", "ICBC-BJ-XC", "NOPE"]
    for code in codes:
        lineage = await directory.lineage(code)
        superior = lineage[1] if len(lineage) > 1 else None
        assert superior == await directory.superior_of(code)
        for ancestor in codes:
            assert (ancestor in lineage) is await directory.is_within(ancestor, code)


async def test_put_many_stores_parents_first_whatever_the_order(pool: asyncpg.Pool) -> None:
    directory = InstitutionDirectory(pool)
    nodes = [
        InstitutionNode("PA-SZ-FT", "福田支公司", "sub_branch", "PA-SZ"),
        InstitutionNode("PA-SZ", "深圳分公司", "branch", "PA"),
        InstitutionNode("PA", "中国平安财产保险", "head_office"),
    ]
    assert await directory.put_many(nodes) == (3, 0)
    assert await directory.subtree("PA") == ["PA", "PA-SZ", "PA-SZ-FT"]
    assert await directory.put_many(nodes[:1]) == (0, 1)


async def test_put_many_stores_nothing_when_one_node_is_refused(pool: asyncpg.Pool) -> None:
    directory = InstitutionDirectory(pool)
    nodes = [
        InstitutionNode("PA", "中国平安财产保险", "head_office"),
        InstitutionNode("PA-SZ", "深圳分公司", "branch", "GHOST"),
    ]
    with pytest.raises(HierarchyRefused):
        await directory.put_many(nodes)
    assert await directory.get("PA") is None


async def test_put_many_refuses_a_loop_among_the_given_nodes(pool: asyncpg.Pool) -> None:
    nodes = [
        InstitutionNode("A", "甲", "branch", "B"),
        InstitutionNode("B", "乙", "branch", "A"),
    ]
    with pytest.raises(HierarchyRefused) as refused:
        await InstitutionDirectory(pool).put_many(nodes)
    assert refused.value.code == INSTITUTION_CYCLE


@pytest.mark.parametrize(
    ("code", "name", "kind"),
    [
        ("bad code", "名", "branch"),
        ("A" * 65, "名", "branch"),
        ("OK", " ", "branch"),
        ("OK", "名", "x"),
    ],
    ids=["space in code", "code too long", "blank name", "unknown kind"],
)
async def test_malformed_fields_are_refused_before_the_database(
    pool: asyncpg.Pool, code: str, name: str, kind: str
) -> None:
    with pytest.raises(ValueError):
        await InstitutionDirectory(pool).put(code, name, kind, "ICBC")
