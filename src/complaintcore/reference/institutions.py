"""The institution tree (DOMAIN.md "Words"): head office (总行/总公司) → branch (分行/分公司) →
sub-branch (支行/支公司), each node named by a code.

The tree decides who sees what (staff see their node's subtree), where a review goes (the
superior, Art. 20) and how statistics roll up (Art. 26). The directory keeps it a forest of proper
trees; a write that would break one is refused with a stable code:

- `invalid_hierarchy`: a head office has a parent, a branch or sub-branch has none, or a node would
  hang under a sub-branch (a sub-branch is the lowest level, so it has no children). A branch may
  hang under a branch (二级分行 under 一级分行) and a sub-branch under a head office (总行直属支行).
- `unknown_parent`: the parent code names no node.
- `institution_cycle`: the parent is the node itself or one of its descendants.

Every read is one SQL statement (the recursive ones walk the `parent` column and its index), so
the directory is cheap enough to ask on every request.

Why one file of 400 lines: the tree's rules, its store and its file formats change together.
"""

from __future__ import annotations

import csv
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import asyncpg

from complaintcore.infra import advisory_locks
from complaintcore.reference.files import read_json_or_csv

INSTITUTION_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MAX_INSTITUTION_CODE_LENGTH = 64
MAX_INSTITUTION_NAME_LENGTH = 200
_INSTITUTION_CODE = re.compile(INSTITUTION_CODE_PATTERN)


UNKNOWN_PARENT = "unknown_parent"
INSTITUTION_CYCLE = "institution_cycle"
INVALID_HIERARCHY = "invalid_hierarchy"
CODE_TAKEN_IN_OTHER_CASE = "institution_code_conflict"

CSV_HEADER = ("code", "name", "kind", "parent")


class InstitutionKind(StrEnum):
    HEAD_OFFICE = "head_office"
    BRANCH = "branch"
    SUB_BRANCH = "sub_branch"


_KINDS = frozenset(kind.value for kind in InstitutionKind)


@dataclass(frozen=True)
class Institution:
    """A node of the tree with its parent (None for a head office) and its children's codes."""

    code: str
    name: str
    kind: str
    parent: str | None
    children: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstitutionNode:
    """What a write gives for one node; `validated()` checks its fields' shapes."""

    code: str
    name: str
    kind: str
    parent: str | None = None

    def validated(self) -> InstitutionNode:
        check_institution_code(self.code, "code")
        if self.parent is not None:
            check_institution_code(self.parent, "parent")
        name = self.name.strip() if isinstance(self.name, str) else ""
        if not 1 <= len(name) <= MAX_INSTITUTION_NAME_LENGTH:
            raise ValueError(f"name must be 1 to {MAX_INSTITUTION_NAME_LENGTH} characters")
        if "\x00" in name:
            raise ValueError("name must not contain NUL characters (PostgreSQL cannot store them)")
        if not isinstance(self.kind, str) or self.kind not in _KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {', '.join(sorted(_KINDS))}")
        return InstitutionNode(self.code, name, str(self.kind), self.parent)


class HierarchyRefused(Exception):
    """A write that would break the tree; `code` is stable (HTTP 409)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def check_institution_code(code: object, field: str = "code") -> str:
    if not isinstance(code, str) or not _INSTITUTION_CODE.fullmatch(code):
        raise ValueError(
            f"{field} {code!r} must be 1 to {MAX_INSTITUTION_CODE_LENGTH} letters, digits, "
            "'-' or '_', starting with a letter or digit"
        )
    return code


class InstitutionDirectory:
    """The institution tree in PostgreSQL (table `institutions`)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, code: str) -> Institution | None:
        row = await self._pool.fetchrow(_SELECT_WITH_CHILDREN, code)
        return _institution(row) if row else None

    async def put(
        self, code: str, name: str, kind: str, parent: str | None = None
    ) -> tuple[Institution, bool]:
        """Create or update a node; `created` tells which. Raises `HierarchyRefused`."""
        node = InstitutionNode(code, name, kind, parent).validated()
        async with self._pool.acquire() as connection, _locked_transaction(connection):
            created = await _put(connection, node)
            row = await connection.fetchrow(_SELECT_WITH_CHILDREN, node.code)
        return _institution(row), created

    async def put_many(self, nodes: Iterable[InstitutionNode]) -> tuple[int, int]:
        """Create or update every node in one transaction, parents first whatever the order.

        Returns (created, updated). All or nothing: one refused node stores none.
        """
        ordered = parents_first([node.validated() for node in nodes])
        created = 0
        async with self._pool.acquire() as connection, _locked_transaction(connection):
            for node in ordered:
                created += await _put(connection, node)
        return created, len(ordered) - created

    async def subtree(
        self, code: str, *, connection: asyncpg.Connection | None = None
    ) -> list[str]:
        """`code` first, then every descendant's code in code order; [] for an unknown code
        (`connection`: as for `is_within`)."""
        rows = await (connection or self._pool).fetch(_SELECT_SUBTREE, code)
        return [row["code"] for row in rows]

    async def is_within(
        self, ancestor: str, code: str, *, connection: asyncpg.Connection | None = None
    ) -> bool:
        """Whether `code` is `ancestor` or one of its descendants.

        A caller holding a pool connection passes it: taking a second one while holding the first
        can exhaust the pool, every holder waiting for a connection none will release.
        """
        return await _is_within(connection or self._pool, ancestor, code)

    async def lineage(
        self, code: str, *, connection: asyncpg.Connection | None = None
    ) -> tuple[str, ...]:
        """`code`, its parent, its grandparent… up to its head office; () for an unknown code.

        One read answers both `is_within(x, code)` and `superior_of(code)` (`connection`: as above).
        """
        rows = await (connection or self._pool).fetch(_SELECT_LINEAGE, code)
        return tuple(row["code"] for row in rows)

    async def superior_of(
        self, code: str, *, connection: asyncpg.Connection | None = None
    ) -> str | None:
        """The parent's code: None for a head office or an unknown code (`connection`: as above)."""
        executor = connection or self._pool
        return await executor.fetchval("SELECT parent FROM institutions WHERE code = $1", code)


def parents_first(nodes: Sequence[InstitutionNode]) -> list[InstitutionNode]:
    """`nodes` reordered so a parent given among them comes before its children.

    Raises `ValueError` for a code given twice and `HierarchyRefused` for a cycle among them.
    """
    by_code: dict[str, InstitutionNode] = {}
    given: dict[str, str] = {}
    for node in nodes:
        if node.code.upper() in given:
            raise ValueError(
                f"institution {node.code} is given twice (as {given[node.code.upper()]};"
                " codes are unique in any letter case)"
            )
        given[node.code.upper()] = node.code
        by_code[node.code] = node
    ordered: list[InstitutionNode] = []
    placed: set[str] = set()
    for node in nodes:
        chain = _unplaced_ancestry(node, by_code, placed)
        ordered.extend(reversed(chain))
        placed.update(link.code for link in chain)
    return ordered


def _unplaced_ancestry(
    node: InstitutionNode, by_code: dict[str, InstitutionNode], placed: set[str]
) -> list[InstitutionNode]:
    """`node`, its parent, its grandparent… while they are given and not placed yet."""
    chain: list[InstitutionNode] = []
    seen: set[str] = set()
    current: InstitutionNode | None = node
    while current is not None and current.code not in placed:
        if current.code in seen:
            raise HierarchyRefused(INSTITUTION_CYCLE, f"{current.code} would be its own ancestor")
        seen.add(current.code)
        chain.append(current)
        current = by_code.get(current.parent) if current.parent else None
    return chain


def read_institution_file(path: Path, max_bytes: int | None = None) -> list[InstitutionNode]:
    """Nodes from a JSON list of `{code, name, kind, parent}` or a CSV `code,name,kind,parent`."""
    return read_json_or_csv(path, institutions_from_json, institutions_from_csv, max_bytes)


def institutions_from_json(data: Any) -> list[InstitutionNode]:
    if not isinstance(data, list):
        raise ValueError("institution JSON must be a list of {code, name, kind, parent} objects")
    return [_node_from_mapping(item, f"item {index}") for index, item in enumerate(data)]


_EXTRA_CELLS = "extra cells"


def institutions_from_csv(lines: Iterable[str]) -> list[InstitutionNode]:
    reader = csv.DictReader(lines, restkey=_EXTRA_CELLS)
    if tuple(reader.fieldnames or ()) != CSV_HEADER:
        raise ValueError(f"institution CSV must have the header {','.join(CSV_HEADER)}")
    nodes = []
    for row in reader:
        where = f"line {reader.line_num}"
        extra = row.pop(_EXTRA_CELLS, None)
        if extra is not None:
            cells = len(CSV_HEADER) + len(extra)
            raise ValueError(f"{where}: {cells} cells, the header has {len(CSV_HEADER)}")
        if any((value or "").strip() for value in row.values()):
            nodes.append(_node_from_mapping(row, where))
    return nodes


def _node_from_mapping(item: Any, where: str) -> InstitutionNode:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object with code, name, kind, parent")
    unknown = sorted(str(key) for key in item.keys() - set(CSV_HEADER))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    parent = item.get("parent") or None
    try:
        return InstitutionNode(
            code=item.get("code"), name=item.get("name"), kind=item.get("kind"), parent=parent
        ).validated()
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


@asynccontextmanager
async def _locked_transaction(connection: asyncpg.Connection) -> AsyncIterator[None]:
    """A transaction holding the tree's write lock.

    Two concurrent moves could each pass the cycle check against the tree as it was and together
    close a loop; writes to the tree are rare (admin only), so they simply take turns.
    """
    async with connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock($1, 0)", advisory_locks.INSTITUTION_TREE_WRITES
        )
        yield


async def _put(connection: asyncpg.Connection, node: InstitutionNode) -> bool:
    """Check `node` against the tree as it is, then store it; True when it is new."""
    _check_root_rule(node)
    await _check_code_unique_in_any_case(connection, node.code)
    existing = await connection.fetchrow(_SELECT_HAS_CHILDREN, node.code)
    if existing and existing["has_children"] and node.kind == InstitutionKind.SUB_BRANCH:
        raise HierarchyRefused(
            INVALID_HIERARCHY, f"{node.code} has children, so it cannot be a sub_branch"
        )
    if node.parent is not None:
        await _check_parent(connection, node)
    await connection.execute(
        """
        INSERT INTO institutions (code, name, kind, parent) VALUES ($1, $2, $3, $4)
        ON CONFLICT (code) DO UPDATE
            SET name = EXCLUDED.name, kind = EXCLUDED.kind, parent = EXCLUDED.parent,
                updated_at = now()
        """,
        node.code,
        node.name,
        node.kind,
        node.parent,
    )
    return existing is None


async def _check_code_unique_in_any_case(connection: asyncpg.Connection, code: str) -> None:
    """`br-b` beside `BR-B` reads as one node to a person: codes are unique in any letter case
    (the index `institutions_code_any_case` holds it too)."""
    other = await connection.fetchval(
        "SELECT code FROM institutions WHERE upper(code) = upper($1) AND code <> $1", code
    )
    if other is not None:
        raise HierarchyRefused(
            CODE_TAKEN_IN_OTHER_CASE,
            f"{code} differs from the existing institution {other} only in letter case",
        )


def _check_root_rule(node: InstitutionNode) -> None:
    if node.kind == InstitutionKind.HEAD_OFFICE and node.parent is not None:
        raise HierarchyRefused(INVALID_HIERARCHY, "a head_office has no parent")
    if node.kind != InstitutionKind.HEAD_OFFICE and node.parent is None:
        raise HierarchyRefused(INVALID_HIERARCHY, f"a {node.kind} needs a parent")


async def _check_parent(connection: asyncpg.Connection, node: InstitutionNode) -> None:
    assert node.parent is not None
    if node.parent == node.code:
        raise HierarchyRefused(INSTITUTION_CYCLE, f"{node.code} cannot be its own parent")
    parent_kind = await connection.fetchval(
        "SELECT kind FROM institutions WHERE code = $1", node.parent
    )
    if parent_kind is None:
        raise HierarchyRefused(UNKNOWN_PARENT, f"no institution {node.parent}")
    if await _is_within(connection, node.code, node.parent):
        raise HierarchyRefused(
            INSTITUTION_CYCLE, f"{node.parent} is one of {node.code}'s descendants"
        )
    if parent_kind == InstitutionKind.SUB_BRANCH:
        raise HierarchyRefused(
            INVALID_HIERARCHY, f"{node.parent} is a sub_branch, which has no children"
        )


async def _is_within(executor: asyncpg.Pool | asyncpg.Connection, ancestor: str, code: str) -> bool:
    # Walks up from `code`: a tree is shallow, so this reads a handful of rows. UNION (not UNION
    # ALL) ends the walk even on a loop written behind the directory's back.
    return await executor.fetchval(
        """
        WITH RECURSIVE lineage (code, parent) AS (
            SELECT code, parent FROM institutions WHERE code = $2
            UNION
            SELECT up.code, up.parent FROM institutions AS up
            JOIN lineage ON up.code = lineage.parent
        )
        SELECT EXISTS (SELECT 1 FROM lineage WHERE code = $1)
        """,
        ancestor,
        code,
    )


def _institution(row: asyncpg.Record) -> Institution:
    return Institution(
        code=row["code"],
        name=row["name"],
        kind=row["kind"],
        parent=row["parent"],
        children=tuple(row["children"]),
    )


_SELECT_WITH_CHILDREN = """
    SELECT node.code, node.name, node.kind, node.parent,
           coalesce(
               array_agg(child.code ORDER BY child.code) FILTER (WHERE child.code IS NOT NULL),
               '{}'
           ) AS children
    FROM institutions AS node
    LEFT JOIN institutions AS child ON child.parent = node.code
    WHERE node.code = $1
    GROUP BY node.code
"""

_SELECT_HAS_CHILDREN = """
    SELECT EXISTS (SELECT 1 FROM institutions AS child WHERE child.parent = node.code)
           AS has_children
    FROM institutions AS node
    WHERE node.code = $1
"""


# The depth cap ends the walk even on a loop written behind the directory's back (a tree is
# shallow: head office, branches, sub-branch).
def lineage_sql(code: str) -> str:
    """The lineage query of `InstitutionDirectory.lineage` for the code that the SQL expression
    `code` gives (a parameter or a subquery), for a caller reading it in a statement of its own."""
    return f"""
    WITH RECURSIVE lineage (code, parent, depth) AS (
        SELECT code, parent, 0 FROM institutions WHERE code = {code}
        UNION ALL
        SELECT up.code, up.parent, lineage.depth + 1 FROM institutions AS up
        JOIN lineage ON up.code = lineage.parent
        WHERE lineage.depth < 64
    )
    SELECT code FROM lineage ORDER BY depth
"""


_SELECT_LINEAGE = lineage_sql("$1")

# UNION ends the walk even on a loop written behind the directory's back.
_SELECT_SUBTREE = """
    WITH RECURSIVE tree (code) AS (
        SELECT code FROM institutions WHERE code = $1
        UNION
        SELECT child.code FROM institutions AS child JOIN tree ON child.parent = tree.code
    )
    SELECT code FROM tree ORDER BY code <> $1, code
"""
