"""A regulator holding a case's events re-verifies its chain with code of their own: the README's
recipe ("Verifying a chain yourself"), followed here with the standard library alone, apart from
the service's `events/hashing.py`."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from api_support import days_ago, decision, notice, ok, post, receive
from testsupport import LiveService

GENESIS = "0" * 64


def recorded_at_as_hashed(text: str) -> str:
    """RFC 3339 in, `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC out."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def recomputed_hash(event: dict[str, Any]) -> str:
    document = {
        "stream_id": event["stream_id"],
        "version": event["version"],
        "event_type": event["type"],
        "schema_version": event["schema_version"],
        "data": event["data"],
        # the API lists every metadata member, null when not known; the hash has the known ones
        "metadata": {name: value for name, value in event["metadata"].items() if value is not None},
        "recorded_at": recorded_at_as_hashed(event["recorded_at"]),
        "prev_hash": event["prev_hash"],
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def first_broken_version(events: list[dict[str, Any]]) -> int | None:
    previous = GENESIS
    for expected_version, event in enumerate(events, start=1):
        if event["version"] != expected_version or event["prev_hash"] != previous:
            return expected_version
        if recomputed_hash(event) != event["hash"]:
            return expected_version
        previous = event["hash"]
    return None


def a_case_with_history(live: LiveService) -> list[dict[str, Any]]:
    with live.client("staff_a") as client:
        case = receive(client, received_days_ago=3)
        ok(post(client, case, "assign", {"handler_id": "staff-a1"}))
        body = {
            "subject": "acceptance",
            "notice": notice(days_ago(2)),
            "summary": "已受理，“引号”\t与 \\ 斜杠",
        }
        ok(post(client, case, "notify", body))
        ok(post(client, case, "decide", decision(days_ago(1))))
        events = client.get(f"/v1/complaints/{case['id']}/events")
        assert events.status_code == 200, events.text
        return events.json()


def test_the_readme_recipe_verifies_a_stream_from_the_api(live: LiveService) -> None:
    events = a_case_with_history(live)
    assert len(events) == 4
    assert first_broken_version(events) is None


def test_the_recipe_finds_an_altered_event_at_its_version(live: LiveService) -> None:
    events = a_case_with_history(live)
    events[2]["data"]["summary"] = events[2]["data"]["summary"] + "改"
    assert first_broken_version(events) == 3


def test_the_recipe_finds_a_removed_event(live: LiveService) -> None:
    events = a_case_with_history(live)
    assert first_broken_version(events[:1] + events[2:]) == 2
