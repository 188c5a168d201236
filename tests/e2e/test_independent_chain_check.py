"""A regulator holding a case's events re-verifies its chain with code of their own: the README's
recipe ("Verifying a chain yourself"), followed here with the standard library alone, apart from
the service's `events/hashing.py` (`chain_recipe.py`)."""

from typing import Any

from api_support import days_ago, decision, notice, ok, post, receive
from chain_recipe import first_broken_version
from testsupport import LiveService


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
