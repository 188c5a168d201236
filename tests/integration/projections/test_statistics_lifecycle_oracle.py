"""Staff figures, the CSV return, erasure, a rebuild and a tree move, each against the
oracle of test_statistics_oracle.py (computed from the histories alone) or against the
answers given before (DOMAIN.md "Personal data": "every statistic is unchanged" by erasure;
"Statistics": a rebuild "gets exactly the figures that the live projection shows")."""

import csv
import io
from datetime import date, timedelta
from typing import Any

import asyncpg
from hypothesis import given
from statistics_oracle import (
    EXAMPLES,
    RANGES,
    Case,
    oracle,
    played,
    worlds,
)

from complaintcore.application.complaint_service import Rendered, RequestInfo
from complaintcore.auth.principals import Principal
from complaintcore.domain.commands import ErasePersonalData
from complaintcore.projections.rebuild import RebuildSettings, rebuild
from complaintcore.projections.runner import ProjectionRunner
from complaintcore.projections.statistics.csv_return import CSV_HEADER, statistics_csv
from complaintcore.projections.statistics.queries import institution_statistics
from complaintcore.projections.statistics.staff import staff_statistics

ADMIN = Principal("admin-1", "admin", None)
UPHELD = ("upheld", "partially_upheld")


def _nothing(*_: object) -> Rendered:
    return Rendered(200, None, {})


def staff_oracle(cases: list[Case], a: date, b: date) -> dict[str, Any]:
    def within(day: date | None) -> bool:
        return day is not None and a <= day <= b

    handlers: dict[str, dict[str, Any]] = {}

    def of(staff_id: str) -> dict[str, Any]:
        return handlers.setdefault(
            staff_id,
            {
                "staff_id": staff_id,
                "decided": 0,
                "on_time": 0,
                "review_changed": 0,
                "satisfaction": {"satisfied": 0, "basically_satisfied": 0, "dissatisfied": 0},
            },
        )

    named: dict[str, dict[str, Any]] = {}
    for c in cases:
        if within(c.decided):
            h = of(c.handler)
            h["decided"] += 1
            h["on_time"] += c.on_time
        if c.decided and within(c.review_on) and c.review_new is not None:
            of(c.handler)["review_changed"] += 1
        if c.decided and c.follow_ups and within(c.follow_ups[-1][0]):
            h = of(c.handler)
            sat = c.follow_ups[-1][1]
            if sat is not None:
                h["satisfaction"][str(sat)] += 1
        for s in sorted(set(c.staff)):
            entry = named.setdefault(s, {"staff_id": s, "named": 0, "upheld": 0})
            if within(c.received) and c.merged_on is None:
                entry["named"] += 1
            if within(c.decided) and c.final_outcome in UPHELD:
                entry["upheld"] += 1
    return {
        "handlers": sorted(handlers.values(), key=lambda h: h["staff_id"]),
        "respondent_staff": sorted(
            (e for e in named.values() if e["named"] or e["upheld"]), key=lambda e: e["staff_id"]
        ),
    }


async def answers(pool: asyncpg.Pool, root: str, as_of: date) -> dict[Any, Any]:
    found: dict[Any, Any] = {}
    tree = await pool.fetch(
        "WITH RECURSIVE t(code) AS (SELECT $1::text UNION SELECT i.code FROM institutions i"
        " JOIN t ON i.parent = t.code) SELECT code FROM t ORDER BY code",
        root,
    )
    codes = [row["code"] for row in tree]
    for a, b, kind in RANGES:
        found[(a, b, kind)], _ = await institution_statistics(pool, root, codes, a, b, kind, as_of)
        found[("csv", a, b, kind)] = await statistics_csv(pool, root, a, b, kind, as_of, True)
        found[("staff", a, b)], _ = await staff_statistics(pool, codes, a, b)
    return found


@EXAMPLES
@given(world=worlds())
async def test_staff_csv_erasure_rebuild_and_tree_move(
    pool: asyncpg.Pool, database_url: str, world: dict[str, Any]
) -> None:
    cases, root, desk, as_of = await played(pool, database_url, world, "RW")
    mine = {root, f"{root}-B", f"{root}-S"}

    before = await answers(pool, root, as_of)
    # staff figures against the oracle
    for a, b, _kind in RANGES:
        got = before[("staff", a, b)]
        want = staff_oracle(cases, a, b)
        assert got == want, f"staff {a}..{b}"
    # the CSV return against the JSON answer, row by row (rollup: the subtree of each node)
    for a, b, kind in RANGES:
        rows = list(csv.DictReader(io.StringIO(before[("csv", a, b, kind)])))
        assert list(rows[0].keys()) == list(CSV_HEADER)
        for row in rows:
            node = row["institution"]
            sub = {
                root: mine,
                f"{root}-B": {f"{root}-B", f"{root}-S"},
                f"{root}-S": {f"{root}-S"},
            }[node]
            scoped = [c for c in cases if c.inst in sub]
            want = oracle(
                scoped, date.fromisoformat(row["from"]), date.fromisoformat(row["to"]), as_of
            )
            flat = {k: v for k, v in want.items() if not isinstance(v, dict)}
            for group in ("rectification", "follow_up"):
                for name, value in want[group].items():
                    flat[f"{group}_{name}"] = value
            for name, value in flat.items():
                cell = row[name]
                if value is None:
                    assert cell == "", (node, row["period"], name)
                elif name == "handling_days_mean":
                    assert cell == f"{value:.2f}", (node, row["period"], name)
                else:
                    assert cell == str(value), (node, row["period"], name, cell, value)

    # erasure of every closed case, far past retention: nothing changes
    erase_on = as_of + timedelta(days=366 * 7)
    erased = []
    for c in cases:
        if (
            c.end in ("withdraw", "decline", "merge")
            or c.review_on
            or c.withdraw_in_review
            or (c.decided and c.level == "root")
            or (c.decided and not c.appeal)
        ):
            desk.today = erase_on
            command = ErasePersonalData(erase_on, "保存期限届满", "《个人信息保护法》第四十七条")
            await desk.service.handle(ADMIN, c.id, command, None, RequestInfo(), _nothing)
            erased.append(c.id)
    assert await pool.fetchval(
        "SELECT count(*) FROM events WHERE event_type = 'PersonalDataErased'"
        " AND stream_id = ANY($1::text[])",
        erased,
    ) == len(erased)
    await ProjectionRunner(database_url, desk.store, batch_size=5).catch_up()
    after_erasure = await answers(pool, root, as_of)
    for key, value in before.items():
        assert after_erasure[key] == value, f"erasure changed {key}"

    # a rebuild from the events alone gives the same answers
    await rebuild(database_url, ["statistics"], settings=RebuildSettings(scan_workers=1))
    after_rebuild = await answers(pool, root, as_of)
    for key, value in before.items():
        assert after_rebuild[key] == value, f"rebuild changed {key}"

    # a tree move: the sub-branch moves directly under the head office; the branch's rollup
    # loses its cases, the head office's keeps them
    await desk.institutions.put(f"{root}-S", "支行", "sub_branch", root)
    for code, sub in ((f"{root}-B", {f"{root}-B"}), (root, mine)):
        scoped = [c for c in cases if c.inst in sub]
        for a, b, kind in RANGES:
            answer, _ = await institution_statistics(pool, code, sorted(sub), a, b, kind, as_of)
            for period in [*answer["periods"], answer["total"]]:
                want = oracle(scoped, period["from"], period["to"], as_of)
                assert period["figures"] == want, f"after move {code} {a}..{b} {kind}"
        rows = list(
            csv.DictReader(
                io.StringIO(
                    await statistics_csv(
                        pool, code, date(2025, 1, 1), date(2027, 12, 31), "quarter", as_of, True
                    )
                )
            )
        )
        for row in rows:
            if row["institution"] != code:
                continue
            want = oracle(
                scoped, date.fromisoformat(row["from"]), date.fromisoformat(row["to"]), as_of
            )
            assert row["received"] == str(want["received"]), (code, row["period"])
            assert row["decided"] == str(want["decided"]), (code, row["period"])
