"""Recognisable personal values sent through the API of a live
`complaintcore serve` (webhooks on, the internal-control commands, the search, the reveal, the
erasure), then every stored byte (every table but the key tables), the serve log and the webhook
bodies searched for them (DOMAIN.md "Personal data": no other table holds personal data in
plaintext; logs and webhooks show masked values or none; erased "everywhere").

What tests/e2e/test_personal_data_at_rest.py does not send: the headers a client sets (each stored
with every event), a personal value typed into a URL path, webhooks, attribute / rectify /
follow-up / approve-redress over HTTP, and an erasure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_personal_data_at_rest import hits, stored_texts

from testsupport import LiveService, live_service, master_key_env
from webhook_support import Receiver

NAME = "泄露测试人"
ID_NUMBER = "11010519491231002X"
PHONE = "13812345678"
FACTS = "独特事实文本XYZ"
TEXTS = {
    "address": "泄露测试市独特路九十九号",
    "claims": "独特请求文本QRS",
    "agent": "代理泄露人",
    "staff": "员工泄露名",
    "note": "审批备注泄露ABC",
    "findings": "核实情况泄露DEF",
    "basis": "依据泄露GHI",
    "third_party": "第三方泄露公司",
    "description": "整改措施泄露JKL",
    "follow_up": "回访记录泄露MNO",
    "terms": "约定事项泄露PQR",
}
ERASURE = {"reason": "保存期限届满", "legal_basis": "《个人信息保护法》第四十七条"}
WEBHOOK_ENV = {
    "COMPLAINTCORE_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
    "COMPLAINTCORE_WEBHOOK_POLL": "0.05",
}


def needles() -> set[str]:
    """The full values, and runs of their digits longer than any mask shows."""
    found = {NAME, ID_NUMBER, PHONE, FACTS, *TEXTS.values()}
    found |= {ID_NUMBER[i : i + 10] for i in range(len(ID_NUMBER) - 10)}
    found |= {PHONE[i : i + 9] for i in range(len(PHONE) - 8)}
    return found


def imported(
    hooks: LiveService, folder: Path, lines: list[str]
) -> tuple[subprocess.CompletedProcess[str], str]:
    """`complaintcore import` of `lines` under the live service's master key, some refused
    (exit 2): what it printed, and its `--refusals` file."""
    source, refusals = folder / "cases.jsonl", folder / "refusals.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(DATABASE_URL=hooks.database_url, COMPLAINTCORE_LOG_FORMAT="json")
    env.update(master_key_env(hooks.log_path.parent))
    command = [sys.executable, "-m", "complaintcore.cli", "import", str(source)]
    done = subprocess.run(
        [*command, "--refusals", str(refusals)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    return done, refusals.read_text(encoding="utf-8")


def complaint_2019(**extra: object) -> dict:
    body = {
        "respondent_institution": "BR-A",
        "channel": "in_person",
        "received_on": "2019-01-02",
        "complainant": {
            "kind": "natural_person",
            "name": NAME,
            "id_type": "resident_id",
            "id_number": ID_NUMBER,
            "contact": PHONE,
            "address": TEXTS["address"],
        },
        "agent": {
            "name": TEXTS["agent"],
            "id_type": "resident_id",
            "id_number": ID_NUMBER,
            "contact": PHONE,
            "authorization_ref": "POA-1",
        },
        "claims": TEXTS["claims"],
        "facts": FACTS,
        "category": {"business": "credit_card", "reason": "pricing_and_fees"},
        "respondent_staff": [{"staff_id": "staff-x9", "name": TEXTS["staff"]}],
    }
    body.update(extra)
    return body


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as started:
        yield started


@pytest.fixture(scope="module")
def hooks(
    module_database_url: str, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    folder = tmp_path_factory.mktemp("pii")
    with live_service(module_database_url, tokens, folder, **WEBHOOK_ENV) as service:
        yield service


def _wait(condition, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _command(client: httpx.Client, case_id: str, command: str, body: dict) -> dict:
    response = client.post(f"/v1/complaints/{case_id}/{command}", json=body)
    assert response.status_code == 200, (command, response.text)
    return response.json()


@pytest.fixture(scope="module")
def lifecycle(hooks: LiveService, receiver: Receiver) -> dict:
    """A case walked through every command that takes a free text not covered elsewhere,
    subscribed to by a webhook, revealed, searched for, and erased; what the API answered."""
    answers: list[str] = []
    with (
        hooks.client("admin") as admin,
        hooks.client("staff_a") as staff,
        hooks.client("supervisor_ho") as supervisor,
    ):
        created = admin.post(
            "/v1/webhooks", json={"url": receiver.url, "institution": "HO", "events": ["*"]}
        )
        assert created.status_code == 201, created.text
        received = staff.post("/v1/complaints", json=complaint_2019())
        assert received.status_code == 201, received.text
        case_id = received.json()["id"]
        answers.append(received.text)
        on = "2019-01-03"
        notice = {"method": "agreed", "notified_on": on, "proof_ref": "P-1"}
        for who, command, body in [
            (staff, "assign", {"handler_id": "staff-a1"}),
            (
                supervisor,
                "approve-redress",
                {"up_to_fen": 200000, "note": TEXTS["note"], "approved_on": on},
            ),
            (
                staff,
                "decide",
                {
                    "handler_id": "staff-a1",
                    "outcome": "upheld",
                    "findings": TEXTS["findings"],
                    "basis": TEXTS["basis"],
                    "redress_fen": 150000,
                    "remedies": ["review"],
                    "notice": {**notice, "agreed_terms": TEXTS["terms"]},
                },
            ),
            (
                staff,
                "attribute",
                {
                    "attributed_on": "2019-01-04",
                    "responsible_institution": "BR-A",
                    "root_cause": "third_party",
                    "third_party": TEXTS["third_party"],
                    "actions": [
                        {
                            "action_id": "RA-1",
                            "description": TEXTS["description"],
                            "owner_id": "staff-a1",
                            "due_on": "2019-02-01",
                        }
                    ],
                },
            ),
            (
                staff,
                "rectify",
                {"action_id": "RA-1", "done_on": "2019-01-20", "evidence_ref": "E-1"},
            ),
            (
                staff,
                "follow-up",
                {
                    "reached": True,
                    "satisfaction": "satisfied",
                    "followed_up_on": "2019-01-21",
                    "note": TEXTS["follow_up"],
                },
            ),
        ]:
            response = who.post(f"/v1/complaints/{case_id}/{command}", json=body)
            assert response.status_code == 200, (command, response.text)
            answers.append(response.text)
        found = staff.post(
            "/v1/complainants/search", json={"id_type": "resident_id", "id_number": ID_NUMBER}
        )
        assert [item["id"] for item in found.json()["items"]] == [case_id], found.text
        revealed = staff.get(
            f"/v1/complaints/{case_id}/personal-data", params={"purpose": "核对身份"}
        )
        assert revealed.status_code == 200, revealed.text
        assert NAME in revealed.text and TEXTS["description"] in revealed.text
        erased = admin.post(f"/v1/complaints/{case_id}/erase-personal-data", json=ERASURE)
        assert erased.status_code == 200, erased.text
        answers.append(erased.text)
        for path in ("", "/events", "/audit"):
            answers.append(staff.get(f"/v1/complaints/{case_id}{path}").text)
        answers.append(staff.get("/v1/complaints").text)

    def erasure_announced() -> bool:
        return any(b"personal_data.erased" in r.body for r in receiver.received)

    _wait(erasure_announced)
    time.sleep(1)  # the log lines of the last requests
    return {"case_id": case_id, "answers": answers}


async def test_no_table_holds_a_personal_value_after_the_lifecycle(
    hooks: LiveService, lifecycle: dict
) -> None:
    dumps = await stored_texts(hooks.database_url)
    assert "public.webhook_deliveries" in dumps and "public.alerts" in dumps
    assert lifecycle["case_id"] in dumps["public.webhook_deliveries"]
    assert hits(dumps, needles()) == []


def test_no_answer_log_line_or_webhook_body_holds_one(
    hooks: LiveService, receiver: Receiver, lifecycle: dict
) -> None:
    texts = {f"answer {n}": text for n, text in enumerate(lifecycle["answers"])}
    texts["serve.log"] = hooks.log_path.read_text(encoding="utf-8", errors="replace")
    texts |= {f"webhook {n}": r.body.decode() for n, r in enumerate(receiver.received)}
    assert len(receiver.received) >= 3


# --- what a client may put anywhere ------------------------------------------------------------


async def test_personal_numbers_in_client_headers_are_refused_or_never_stored(
    hooks: LiveService,
) -> None:
    """Found by a review pass: a front-end keying its requests by the complainant's identity
    number (Idempotency-Key), or tagging them with the phone (X-Correlation-Id, User-Agent), had
    them stored in clear in every event's metadata (immutable, never erased). The key is refused
    as the import refuses such an external id; the others are not kept as sent."""
    other_id = "110101198001010010"  # another valid resident number, for this test alone
    other_phone = "13912345670"
    body = complaint_2019()
    body["complainant"] = {**body["complainant"], "id_number": other_id, "contact": other_phone}
    body.pop("agent")
    with hooks.client("staff_a") as staff, hooks.client("admin") as admin:
        refused = staff.post("/v1/complaints", json=body, headers={"Idempotency-Key": other_id})
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "idempotency_key_personal"
        assert other_id not in refused.text
        # a random hex key holds a run of digits shaped like a mobile now and then: taken
        hex_key = {"Idempotency-Key": "e4f13812345678abcdef0123456789ab"}
        assert staff.post("/v1/complaints", json=complaint_2019(), headers=hex_key).is_success
        tagged = {"X-Correlation-Id": other_phone, "User-Agent": f"desk/1.0 ({other_id})"}
        received = staff.post("/v1/complaints", json=body, headers=tagged)
        assert received.status_code == 201, received.text
        assert received.headers["x-correlation-id"] != other_phone
        case_id = received.json()["id"]
        withdrawn = staff.post(
            f"/v1/complaints/{case_id}/withdraw", json={"received_on": "2019-01-03"}
        )
        assert withdrawn.status_code == 200, withdrawn.text
        erased = admin.post(f"/v1/complaints/{case_id}/erase-personal-data", json=ERASURE)
        assert erased.status_code == 200, erased.text
    dumps = await stored_texts(hooks.database_url)
    found = {(value, where) for value, where, _ in hits(dumps, [other_id, other_phone])}
    assert found == set(), sorted(found)
    log = hooks.log_path.read_text(encoding="utf-8", errors="replace")
    assert other_id not in log and other_phone not in log


def test_a_personal_number_typed_into_a_url_path_is_not_logged(
    hooks: LiveService,
) -> None:
    """API.md: the identity number goes in the body, "never in a URL". A client that puts it in
    a path anyway (a GET by number, a case id field filled with the number) is refused, and its
    access log line shows the path without it (found by a review pass: the raw path)."""
    number = "110101199003070011"
    with hooks.client("staff_a") as staff:
        assert staff.get(f"/v1/complainants/{number}").status_code in (404, 405)
        assert staff.get(f"/v1/complaints/{number}").status_code == 422
        assert staff.get(f"/v1/complaints/{number}/personal-data").status_code == 422
    time.sleep(1)
    log = hooks.log_path.read_text(encoding="utf-8", errors="replace")
    lines = [line for line in log.splitlines() if number in line]
    assert lines == []


# --- the command line: `complaintcore import` with lines refused for every kind of reason -------


def test_import_refusals_and_output_hold_no_personal_value(hooks: LiveService, tmp_path) -> None:
    base = complaint_2019()
    base.pop("agent")
    lines: list[str] = []

    def line(**changes: object) -> None:
        document = {**base, "external_id": f"legacy-{len(lines)}", "at": "2019-01-02"}
        document.update(changes)
        lines.append(json.dumps(document, ensure_ascii=False))

    line()  # imported
    bad_id = {**base["complainant"], "id_number": ID_NUMBER[:-1] + "1"}
    line(complainant=bad_id)
    line(complainant={**base["complainant"], "nickname": NAME})  # an unknown field
    line(complainant=f"{NAME} {ID_NUMBER} {PHONE}")
    line(external_id=f"{NAME}-{PHONE}")
    line(external_id=ID_NUMBER)
    line(
        actions=[
            {
                "command": "decide",
                "at": "2019-01-03",
                "handler_id": "staff-a1",
                "outcome": "upheld",
                "findings": FACTS,
                "basis": NAME,
                "remedies": ["review"],
                "notice": {"method": "sms", "proof_ref": "P"},
            }
        ]
    )
    line(actions=[{"command": "assign", "at": "2019-01-03", "handler_id": PHONE + NAME}])
    line(actions=[{"command": "merge", "at": "2019-01-03", "into_external_id": PHONE}])
    line(actions=[f"{NAME} {ID_NUMBER}"])
    line(facts=FACTS + "\x00")
    lines.append(f'{{"external_id": "legacy-x", "name": "{NAME}", {ID_NUMBER}')  # not JSON
    lines.append(json.dumps({**base, "external_id": "legacy-s"})[:-1] + ', "x": "\\ud800"}')
    done, refused_lines = imported(hooks, tmp_path, lines)
    assert "1 cases imported" in done.stdout, done.stdout
    texts = {
        "stdout": done.stdout,
        "stderr": done.stderr,
        "refusals": refused_lines,
    }
    assert texts["refusals"].count("\n") == len(lines) - 1, texts["refusals"]
    assert hits(texts, needles()) == []


def test_an_unknown_key_is_not_echoed_in_the_422_nor_in_the_import_refusals(
    hooks: LiveService, tmp_path
) -> None:
    """A personal value sent as a key (a map keyed by phone number) was echoed as the field of
    an `extra_forbidden` error: in the 422's `detail` and `errors[].field` (into the client's
    and any proxy's logs), and in `complaintcore import`'s stderr and `--refusals` file (found by
    a review pass). Keys are input too."""
    body = complaint_2019()
    body.pop("agent")
    body["complainant"] = {**body["complainant"], PHONE: "mobile"}
    with hooks.client("staff_a") as staff:
        refused = staff.post("/v1/complaints", json=body)
    assert refused.status_code == 422, refused.text

    line = {**body, "external_id": "legacy-key", "at": "2019-01-02"}
    done, refused_lines = imported(hooks, tmp_path, [json.dumps(line, ensure_ascii=False)])
    texts = {
        "422 body": refused.text,
        "import stderr": done.stderr,
        "refusals file": refused_lines,
    }
    assert [(value, where) for value, where, _ in hits(texts, [PHONE])] == []
