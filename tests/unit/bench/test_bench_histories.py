"""The bench's histories are what TARGETS.md measures: rule-abiding (the import refuses none) and
holding what the statistics figure breaks down (root causes, rectification, follow-ups)."""

import json

import asyncpg
from bench import figures, histories
from bench.database import bench_master_key_file

from complaintcore.crypto.keys import FileKeyProvider
from complaintcore.projections.rebuild import RebuildSettings, rebuild


def test_the_histories_attribute_rectify_and_follow_up_some_decided_cases():
    commands = [
        action["command"]
        for line in histories.case_lines(2_000)
        for action in json.loads(line)["actions"]
    ]
    decided = commands.count("decide")
    assert 0.15 * decided < commands.count("attribute") < 0.35 * decided
    assert 0 < commands.count("rectify") < commands.count("attribute")
    assert 0.2 * decided < commands.count("follow-up") < 0.4 * decided


async def test_the_histories_import_without_a_refusal_and_fill_every_breakdown(database_url):
    await figures.seed_reference_data(database_url)
    imported, report = await figures.bulk_import(
        database_url, list(histories.case_lines(400, seed=3))
    )
    assert report.cases_imported == 400 and imported.operations > 400 * 4
    # the statistics as the bench's rebuild makes them, under the key the import sealed with
    under_the_bench_key = FileKeyProvider(bench_master_key_file())
    settings = RebuildSettings(scan_workers=1, key_provider=under_the_bench_key)
    await rebuild(database_url, ["statistics"], restart=True, settings=settings)
    connection = await asyncpg.connect(database_url)
    try:
        counts = await connection.fetchrow(
            "SELECT count(*) AS cases, count(root_cause) AS attributed,"
            " count(*) FILTER (WHERE third_party) AS third_party,"
            " count(*) FILTER (WHERE cardinality(action_due_on) > 0) AS with_actions,"
            " count(followed_up_on) AS followed_up,"
            " count(*) FILTER (WHERE satisfied OR basically_satisfied OR dissatisfied)"
            "  AS answered FROM case_statistics"
        )
    finally:
        await connection.close()
    assert counts["cases"] == 400
    assert counts["attributed"] == counts["with_actions"] > 0
    assert 0 < counts["third_party"] < counts["attributed"]
    assert 0 < counts["answered"] <= counts["followed_up"]


async def test_the_statistics_top_up_rows_fill_every_breakdown_of_the_figure(database_url):
    """TARGETS.md 2026-12: a head office's year *with root-cause and follow-up breakdowns*: the
    rows that bring the facts to 1,000,000 cases hold them, and so do the buckets read."""
    await figures.fill_statistics(database_url, 2_000)
    connection = await asyncpg.connect(database_url)
    try:
        counts = await connection.fetchrow(
            "SELECT count(*) AS cases, count(root_cause) AS attributed,"
            " count(*) FILTER (WHERE third_party) AS third_party,"
            " count(*) FILTER (WHERE action_closed_on[1] IS NULL"
            "  AND cardinality(action_due_on) > 0) AS open_actions,"
            " count(followed_up_on) AS followed_up, count(handler_id) AS handled"
            " FROM case_statistics"
        )
        # the actions' counts and settling day as `facts.internal_control_facts` makes them
        disagreeing = await connection.fetchval(
            "SELECT count(*) FROM case_statistics f, LATERAL (SELECT"
            " count(c) AS closed, count(*) - count(c) AS not_closed,"
            " max(coalesce(c, d + 1)) AS settle_on"
            " FROM unnest(f.action_due_on, f.action_closed_on) AS a (d, c)) AS x"
            " WHERE (f.actions_closed, f.actions_not_closed) <> (x.closed, x.not_closed)"
            " OR f.actions_settle_on IS DISTINCT FROM x.settle_on"
        )
        dimensions = await connection.fetchval(
            "SELECT array_agg(DISTINCT dimension) FROM statistics_yearly"
        )
    finally:
        await connection.close()
    assert counts["cases"] == 2_000
    assert 0 < counts["third_party"] < counts["attributed"]
    assert 0 < counts["open_actions"] < counts["attributed"]
    assert 0 < counts["followed_up"] < counts["handled"]
    assert {"root_cause", "responsible_institution"} <= set(dimensions)
    assert disagreeing == 0
