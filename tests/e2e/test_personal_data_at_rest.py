"""No personal value is stored in clear anywhere (DOMAIN.md "Personal data": encrypted at rest; no
other table holds personal data in plaintext either; personal data never in logs).

Complaints with known identity numbers, phones, names and free texts come in by every path a
case can take into the database: the API of a live `complaintcore serve`, `complaintcore import`
and `complaintcore demo`. Then every stored byte of every table but the key tables (`case_keys`,
`service_keys`: wrapped keys only) is searched for each of those values, and again after
`complaintcore projections rebuild`. Masked values (a name's first character, an identity
number's area code and last 4, a mobile's first 3 and last 4) are allowed, so the search is for
the full values and for the digit runs of the numbers, longer than any mask shows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from api_support import TODAY, days_ago, ok, post
from complaintcore.application.bulk_import import case_id_for
from complaintcore.cli.demo_data import institution_nodes
from complaintcore.crypto.field_cipher import is_sealed
from complaintcore.domain.events import event_to_payload
from complaintcore.domain.identity import (
    is_valid_resident_id,
    mask_id_number,
    mask_name,
    mask_phone,
)
from complaintcore.domain.personal_data import path_pattern, split_personal
from complaintcore.events.model import EventMetadata, NewEvent
from complaintcore.events.store import PostgresEventStore
from complaintcore.infra.database import create_pool
from testsupport import LiveService, live_service, opened_events, session_master_key_file

KEY_TABLES = frozenset({"case_keys", "service_keys"})
PURPOSE = "静态加密检查"
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CJK = re.compile(r"[\u3400-\u9fff]")
_DIGIT_RUN = re.compile(r"[0-9]{8,}")
# Codes stored in the catalogue's personal places, shown (as codes) by the masked complainant.
CODE_POINTERS = frozenset({"/complainant/id_type", "/agent/id_type"})
ID_WINDOW = 10  # a masked identity number shows at most 6 digits in a row (its area code)
PHONE_WINDOW = 9  # a masked mobile shows at most 4


def resident_id(first_17: str) -> str:
    """A resident identity number with its GB 11643 check character."""
    total = sum(int(digit) * weight for digit, weight in zip(first_17, _WEIGHTS, strict=True))
    number = first_17 + "10X98765432"[total % 11]
    assert is_valid_resident_id(number, TODAY), number
    return number


# --- the values sent through the API and the import ------------------------------------------

API_IDS = {
    "complainant": resident_id("11010119850317431"),
    "agent": resident_id("31011519760822658"),
    "heir": resident_id("44030519920105274"),
}
API_PHONES = {
    "complainant": "15823467015",
    "agent": "13366012587",
    "legal_rep": "13755506231",
    "heir": "18691237045",
}
_ID = API_IDS["complainant"]
SPACED_ID = f"{_ID[:6]} {_ID[6:14]} {_ID[14:]}"  # as a number is typed
IMPORT_IDS = {
    "complainant": resident_id("37020219880606713"),
    "agent": resident_id("61011319950415842"),
}
IMPORT_PHONES = {"complainant": "17712390456", "agent": "19945670123", "legal_rep": "15179026384"}
ACCOUNTS = ("6217000010001234567", "6222600110039876543")

API_TEXTS = {
    "name": "欧阳明珠",
    "address": "北京市东城区东四十条甲二十二号院三单元五零一室",
    "agent_name": "司马相如",
    "staff_name": "诸葛孔明",
    "representative_1": "慕容复兴",
    "representative_2": "上官婉儿",
    "claims": f"要求退还账户{ACCOUNTS[0]}被重复扣收的年费捌佰元",
    "facts": "欧阳明珠称在东四十条网点办理业务时柜员未告知收费标准且拒绝出示价目表",
    "notify_summary": "已电话告知投诉人受理结果并核对其东四十条住址无误",
    "major_detail": "暴雨致东四十条网点停业引发周边商户集中投诉",
    "extend_reason": "需调取司马相如代理权限的公证材料及异地交易流水",
    "pause_reason": "委托第三方鉴定机构核验签名笔迹真伪",
    "pause_terms": "约定鉴定期间每周三短信告知进展",
    "supplement_summary": "补充提交与柜员诸葛孔明的全程通话录音光盘",
    "findings": "柜员未履行收费告知义务一事经调阅监控属实",
    "basis": "信用卡章程第十二条及东城支行柜面服务规程第七条",
    "agreed_terms": "双方约定将捌佰元退至尾号四五六七账户并书面致歉",
    "grounds": "对赔付金额不服要求追加三个月利息损失",
    "review_findings": "复核认定应全额退还年费并补偿利息损失",
    "review_terms": "约定复核结论以挂号信寄送至东四十条住址",
    "company": "北京鸿鹄志远商贸有限公司",
    "company_address": "北京市朝阳区望京街道阜通东大街六号院二号楼",
    "legal_rep": "端木蓉蓉",
    "company_claims": f"要求撤销对公账户{ACCOUNTS[1]}的异常冻结并赔偿损失",
    "company_facts": "鸿鹄志远的对公账户在未通知的情况下被冻结十五日",
    "recuse_reason": "经办人员与法定代表人端木蓉蓉系大学同班同学应当回避",
    "withdraw_reason": "鸿鹄志远已与望京网点协商一致主动撤回投诉",
    "heir_name": "皇甫嵩山",
    "heir_proof": "继承公证书二零二六京东证字第八八七七一号",
    "heir_claims": "要求查询已故父亲皇甫伯安名下全部存款余额",
    "heir_facts": "皇甫嵩山持死亡证明至网点查询遭拒并被要求另行提供户籍证明",
    "decline_reason": "投诉人皇甫嵩山未能提供继承关系证明原件无法核实身份",
    "decline_terms": "约定由网点主任当面向皇甫嵩山解释补件要求",
}
IMPORT_TEXTS = {
    "name": "公孙胜利",
    "address": "青岛市市南区香港中路九十九号海景花园七号楼",
    "agent_name": "夏侯惇厚",
    "staff_name": "尉迟恭敬",
    "claims": "要求退还理财产品赎回时被多扣的手续费叁仟元",
    "facts": "公孙胜利于购买理财时经办人尉迟恭敬承诺保本保息未提示风险",
    "notify_summary": "已告知公孙胜利受理并核对青岛香港中路住址",
    "extend_reason": "需调取尉迟恭敬的双录视频及理财销售档案",
    "supplement_summary": "补充提交理财宣传单页与微信聊天截图",
    "findings": "销售人员尉迟恭敬存在夸大收益的误导性陈述",
    "basis": "理财产品销售管理办法第二十七条",
    "agreed_terms": "约定退还手续费叁仟元并赔偿资金占用利息",
    "grounds": "认为利息计算期间过短要求重新核算",
    "review_findings": "复核维持原处理意见利息期间计算无误",
    "approval_note": "总行同意赔付公孙胜利叁仟元手续费及利息",
    "company": "青岛长孙海洋渔业有限公司",
    "company_address": "青岛市崂山区海尔路一百八十号",
    "legal_rep": "长孙无忌",
    "company_claims": "要求解除对公网银的异常交易限制",
    "company_facts": "长孙海洋渔业的网银在月末结算日被限制转账",
    "recuse_reason": "经办人员系长孙无忌的远房表亲应当回避",
    "withdraw_reason": "长孙海洋渔业已恢复网银功能自愿撤回投诉",
}


def _notice(on: str, terms: str | None = None) -> dict[str, Any]:
    if terms is None:
        return {"method": "sms", "proof_ref": "SMS-1", "notified_on": on}
    return {"method": "agreed", "proof_ref": "REC-1", "notified_on": on, "agreed_terms": terms}


def api_receipts() -> dict[str, dict[str, Any]]:
    t = API_TEXTS
    natural = {
        "respondent_institution": "BR-A",
        "channel": "in_person",
        "received_on": days_ago(20),
        "complainant": {
            "kind": "natural_person",
            "name": t["name"],
            "id_type": "resident_id",
            "id_number": API_IDS["complainant"],
            "contact": API_PHONES["complainant"],
            "address": t["address"],
        },
        "agent": {
            "name": t["agent_name"],
            "id_type": "resident_id",
            "id_number": API_IDS["agent"],
            "contact": API_PHONES["agent"],
            "authorization_ref": "POA-2026-0042",
        },
        "claims": t["claims"],
        "facts": t["facts"],
        "category": {"business": "credit_card", "reason": "pricing_and_fees"},
        "respondent_staff": [{"staff_id": "staff-x7", "name": t["staff_name"]}],
        "joint": {
            "complainants": 3,
            "representatives": [t["representative_1"], t["representative_2"]],
        },
    }
    company = {
        "respondent_institution": "BR-A",
        "channel": "letter",
        "received_on": days_ago(12),
        "complainant": {
            "kind": "legal_person",
            "name": t["company"],
            "address": t["company_address"],
            "unified_social_credit_code": "91350100M000100Y43",
            "legal_representative_name": t["legal_rep"],
            "legal_representative_contact": API_PHONES["legal_rep"],
        },
        "claims": t["company_claims"],
        "facts": t["company_facts"],
        "category": {"business": "payment_settlement", "reason": "rules_and_processes"},
    }
    heir = {
        "respondent_institution": "BR-A",
        "channel": "phone",
        "received_on": days_ago(6),
        "complainant": {
            "kind": "natural_person",
            "name": t["heir_name"],
            "id_type": "resident_id",
            "id_number": API_IDS["heir"],
            "contact": API_PHONES["heir"],
        },
        "heir_proof_ref": t["heir_proof"],
        "claims": t["heir_claims"],
        "facts": t["heir_facts"],
        "category": {"business": "savings", "reason": "service_attitude"},
    }
    return {"natural": natural, "company": company, "heir": heir}


def api_commands() -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """(who, command, body) for each case of `api_receipts`."""
    t = API_TEXTS
    natural = [
        (
            "staff_a",
            "notify",
            {
                "subject": "acceptance",
                "notice": _notice(days_ago(19)),
                "summary": t["notify_summary"],
            },
        ),
        ("staff_a", "assign", {"handler_id": "staff-a1"}),
        ("staff_a", "flag-major", {"cause": "disaster", "detail": t["major_detail"]}),
        ("staff_a", "extend", {"reason": t["extend_reason"], "notice": _notice(days_ago(18))}),
        (
            "staff_a",
            "pause",
            {
                "kind": "appraisal",
                "paused_on": days_ago(17),
                "reason": t["pause_reason"],
                "notice": _notice(days_ago(17), t["pause_terms"]),
            },
        ),
        ("staff_a", "resume", {"resumed_on": days_ago(15)}),
        (
            "staff_a",
            "supplement",
            {
                "received_on": days_ago(14),
                "new_facts_and_reasons": False,
                "summary": t["supplement_summary"],
            },
        ),
        (
            "staff_a",
            "decide",
            {
                "handler_id": "staff-a1",
                "outcome": "partially_upheld",
                "findings": t["findings"],
                "basis": t["basis"],
                "redress_fen": 80000,
                "remedies": ["review", "litigation"],
                "notice": _notice(days_ago(10), t["agreed_terms"]),
            },
        ),
        ("staff_a", "appeal", {"received_on": days_ago(8), "grounds": t["grounds"]}),
        (
            "supervisor_ho",
            "decide-review",
            {
                "reviewer_id": "sup-ho1",
                "outcome": "changed",
                "findings": t["review_findings"],
                "new_outcome": "upheld",
                "new_redress_fen": 90000,
                "notice": _notice(days_ago(5), t["review_terms"]),
            },
        ),
    ]
    company = [
        ("staff_a", "assign", {"handler_id": "staff-a1"}),
        ("staff_a", "recuse", {"handler_id": "staff-a1", "reason": t["recuse_reason"]}),
        ("staff_a", "assign", {"handler_id": "staff-a2"}),
        ("staff_a", "withdraw", {"received_on": days_ago(3), "reason": t["withdraw_reason"]}),
    ]
    heir = [
        (
            "staff_a",
            "decline",
            {"reason": t["decline_reason"], "notice": _notice(days_ago(2), t["decline_terms"])},
        ),
    ]
    return {"natural": natural, "company": company, "heir": heir}


STAFF_ACTOR = {"id": "staff-a1", "role": "staff", "institution": "BR-A"}
SUPERVISOR_ACTOR = {"id": "sup-ho1", "role": "supervisor", "institution": "HO"}


def import_lines() -> list[dict[str, Any]]:
    t = IMPORT_TEXTS

    def at(n: int) -> str:
        return (TODAY - timedelta(days=n)).isoformat()

    natural = {
        "external_id": "legacy-0001",
        "respondent_institution": "BR-A",
        "channel": "phone",
        "received_on": at(40),
        "complainant": {
            "kind": "natural_person",
            "name": t["name"],
            "id_type": "resident_id",
            "id_number": IMPORT_IDS["complainant"],
            "contact": IMPORT_PHONES["complainant"],
            "address": t["address"],
        },
        "agent": {
            "name": t["agent_name"],
            "id_type": "resident_id",
            "id_number": IMPORT_IDS["agent"],
            "contact": IMPORT_PHONES["agent"],
            "authorization_ref": "POA-LEGACY-7",
        },
        "claims": t["claims"],
        "facts": t["facts"],
        "category": {"business": "wealth_management", "reason": "marketing"},
        "respondent_staff": [{"staff_id": "staff-x8", "name": t["staff_name"]}],
        "actor": STAFF_ACTOR,
        "at": at(40),
        "actions": [
            {"command": "assign", "at": at(40), "handler_id": "staff-a1"},
            {
                "command": "notify",
                "at": at(39),
                "subject": "acceptance",
                "notice": _notice(at(39)),
                "summary": t["notify_summary"],
            },
            {
                "command": "extend",
                "at": at(30),
                "reason": t["extend_reason"],
                "notice": _notice(at(30)),
            },
            {
                "command": "supplement",
                "at": at(28),
                "received_on": at(28),
                "new_facts_and_reasons": False,
                "summary": t["supplement_summary"],
            },
            {
                "command": "approve-redress",  # beyond the staff limit (Art. 24)
                "at": at(21),
                "actor": SUPERVISOR_ACTOR,
                "approved_on": at(21),
                "up_to_fen": 300000,
                "note": t["approval_note"],
            },
            {
                "command": "decide",
                "at": at(20),
                "handler_id": "staff-a1",
                "outcome": "upheld",
                "findings": t["findings"],
                "basis": t["basis"],
                "redress_fen": 300000,
                "remedies": ["review", "litigation"],
                "notice": _notice(at(20), t["agreed_terms"]),
            },
            {"command": "appeal", "at": at(15), "received_on": at(15), "grounds": t["grounds"]},
            {
                "command": "decide-review",
                "at": at(9),
                "actor": SUPERVISOR_ACTOR,
                "reviewer_id": "sup-ho1",
                "outcome": "kept",
                "findings": t["review_findings"],
                "notice": _notice(at(9)),
            },
        ],
    }
    company = {
        "external_id": "legacy-0002",
        "respondent_institution": "BR-A",
        "channel": "letter",
        "received_on": at(25),
        "complainant": {
            "kind": "legal_person",
            "name": t["company"],
            "address": t["company_address"],
            "unified_social_credit_code": "91350100M000100Y43",
            "legal_representative_name": t["legal_rep"],
            "legal_representative_contact": IMPORT_PHONES["legal_rep"],
        },
        "claims": t["company_claims"],
        "facts": t["company_facts"],
        "category": {"business": "payment_settlement", "reason": "facilities_and_systems"},
        "actor": STAFF_ACTOR,
        "at": at(25),
        "actions": [
            {"command": "assign", "at": at(25), "handler_id": "staff-a1"},
            {
                "command": "recuse",
                "at": at(24),
                "handler_id": "staff-a1",
                "reason": t["recuse_reason"],
            },
            {
                "command": "withdraw",
                "at": at(22),
                "received_on": at(22),
                "reason": t["withdraw_reason"],
            },
        ],
    }
    return [natural, company]


# --- what is searched for --------------------------------------------------------------------


@dataclass
class Needles:
    """The values no stored byte may hold, by where they came from."""

    texts: dict[str, set[str]] = field(default_factory=dict)
    """Per source, the full personal values."""
    digits: dict[str, set[str]] = field(default_factory=dict)
    """Per source, digit runs of the numbers (longer than any mask shows)."""

    def add(self, source: str, values: Iterable[str], numbers: Iterable[str] = ()) -> None:
        texts = self.texts.setdefault(source, set())
        digits = self.digits.setdefault(source, set())
        for value in values:
            if _searchable(value):
                texts.add(value)
            digits.update(_DIGIT_RUN.findall(value))
        for number in numbers:
            digits.update(_DIGIT_RUN.findall(number))

    def all(self) -> set[str]:
        return {value for group in (*self.texts.values(), *self.digits.values()) for value in group}


def _searchable(value: str) -> bool:
    """Long enough to be searched for without meeting it by chance: 4 characters or 2 CJK."""
    return len(value) >= 4 or len(_CJK.findall(value)) >= 2


def windows(number: str, width: int) -> set[str]:
    """Every `width` consecutive digits of `number`'s digit runs."""
    found: set[str] = set()
    for run in re.findall(r"[0-9]+", number):
        found.update(run[start : start + width] for start in range(len(run) - width + 1))
    return found


def own_needles() -> Needles:
    needles = Needles()
    needles.add("api", API_TEXTS.values(), [*API_IDS.values(), *API_PHONES.values(), *ACCOUNTS])
    needles.add("api", [*API_IDS.values(), *API_PHONES.values()])
    needles.texts["api"].add(SPACED_ID)
    needles.add("import", IMPORT_TEXTS.values(), [*IMPORT_IDS.values(), *IMPORT_PHONES.values()])
    needles.add("import", [*IMPORT_IDS.values(), *IMPORT_PHONES.values()])
    for source, ids, phones in (
        ("api", API_IDS, API_PHONES),
        ("import", IMPORT_IDS, IMPORT_PHONES),
    ):
        for number in ids.values():
            needles.digits[source] |= windows(number, ID_WINDOW)
        for number in phones.values():
            needles.digits[source] |= windows(number, PHONE_WINDOW)
    return needles


# --- fixtures --------------------------------------------------------------------------------


def run_cli(
    database_url: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """A `complaintcore` command as an operator runs it, under the run's master key."""
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(DATABASE_URL=database_url, COMPLAINTCORE_LOG_FORMAT="json")
    command = [sys.executable, "-m", "complaintcore.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def live(
    module_database_url: str, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    """`complaintcore serve` under the run's master key, so the command line (import, demo,
    rebuild) and the test's own reads open what it seals."""
    folder = tmp_path_factory.mktemp("live")
    shutil.copy(session_master_key_file(), folder / "master.key")
    with live_service(module_database_url, tokens, folder) as service:
        yield service


@dataclass
class Populated:
    needles: Needles
    api_cases: dict[str, str]  # name -> case id
    import_cases: list[str]
    demo_cases: list[str]
    cli_output: list[str]


@pytest.fixture(scope="module")
async def populated(live: LiveService, tmp_path_factory: pytest.TempPathFactory) -> Populated:
    """Cases received through the API, the bulk import and the demo, and the values to look for."""
    needles = own_needles()
    cli_output: list[str] = []
    database_url = live.database_url

    # the API, with an Idempotency-Key on each receipt (its stored response is a table too)
    api_cases: dict[str, str] = {}
    commands = api_commands()
    clients = {who: live.client(who) for who in ("staff_a", "supervisor_ho")}
    try:
        for name, body in api_receipts().items():
            response = clients["staff_a"].post(
                "/v1/complaints", json=body, headers={"Idempotency-Key": f"rest-{name}"}
            )
            assert response.status_code == 201, response.text
            case = response.json()
            api_cases[name] = case["id"]
            for who, command, command_body in commands[name]:
                ok(post(clients[who], case, command, command_body))
        # searches by identity number (the blind index): the number must not reach the log
        for typed in (API_IDS["complainant"], SPACED_ID):
            body = {"id_type": "resident_id", "id_number": typed}
            found = ok(clients["staff_a"].post("/v1/complainants/search", json=body))["items"]
            assert [item["id"] for item in found] == [api_cases["natural"]]
    finally:
        for client in clients.values():
            client.close()

    # the bulk import, as the command line runs it
    folder = tmp_path_factory.mktemp("import")
    source = folder / "cases.jsonl"
    source.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in import_lines()))
    imported = run_cli(database_url, "import", str(source))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert "2 cases imported" in imported.stdout, imported.stdout
    cli_output += [imported.stdout, imported.stderr]
    import_cases = [case_id_for(line["external_id"]) for line in import_lines()]

    # the demo, whose values are learnt from its opened events
    known = {row["case_id"] for row in await _fetch(database_url, "SELECT case_id FROM case_view")}
    demo = run_cli(database_url, "demo", "--cases", "40")
    assert demo.returncode == 0, demo.stderr
    cli_output.append(demo.stderr)
    rows = await _fetch(database_url, "SELECT case_id FROM case_view")
    demo_cases = sorted({row["case_id"] for row in rows} - known)
    assert len(demo_cases) == 40
    await _learn_demo_values(database_url, demo_cases, needles)
    return Populated(needles, api_cases, import_cases, demo_cases, cli_output)


async def _fetch(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch(sql, *args)
    finally:
        await connection.close()


async def _learn_demo_values(database_url: str, case_ids: list[str], needles: Needles) -> None:
    """Every personal value of the demo's cases, opened with the run's key."""
    reference = {text for node in institution_nodes() for text in (node.name, node.code)}
    values: set[str] = set()
    numbers: set[str] = set()
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        store = PostgresEventStore(pool)
        for case_id in case_ids:
            for event in await opened_events(pool, await store.read_stream(case_id)):
                _, personal = split_personal(event.event_type, event_to_payload(event))
                for where, value in personal.items():
                    if where in CODE_POINTERS or not isinstance(value, str):
                        continue
                    values.add(value)
                    if where.endswith(("id_number", "contact")):
                        numbers.add(value)
    finally:
        await pool.close()
    # a two-character name may happen to be part of an institution's name: not a leak
    coincidental = {value for value in values if any(value in text for text in reference)}
    needles.add("demo", values - coincidental, numbers)
    assert len(needles.texts["demo"]) > 100, "the demo's cases hold personal data to look for"
    assert len(needles.digits["demo"]) > 40


# --- the scan --------------------------------------------------------------------------------


async def stored_texts(database_url: str) -> dict[str, str]:
    connection = await asyncpg.connect(database_url)
    try:
        return await texts_of_tables(connection)
    finally:
        await connection.close()


async def texts_of_tables(connection: asyncpg.Connection) -> dict[str, str]:
    """Every table but the key tables as text (each row as PostgreSQL writes it; the payloads
    and metadata of `events` also as jsonb text; bytea columns also decoded as UTF-8)."""
    tables = await connection.fetch(
        """
        SELECT n.nspname AS schema, c.relname AS name
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'm')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%'
        ORDER BY 1, 2
        """
    )
    dumps: dict[str, str] = {}
    for table in tables:
        if table["name"] in KEY_TABLES:
            continue
        qualified = f'"{table["schema"]}"."{table["name"]}"'
        rows = await connection.fetch(f"SELECT t::text AS row FROM {qualified} t")
        parts = [row["row"] for row in rows]
        byte_columns = await connection.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = $2 AND data_type = 'bytea'",
            table["schema"],
            table["name"],
        )
        for column in byte_columns:
            values = await connection.fetch(
                f'SELECT "{column["column_name"]}" AS v FROM {qualified}'
            )
            parts += [bytes(v["v"]).decode("utf-8", "replace") for v in values if v["v"]]
        dumps[f"{table['schema']}.{table['name']}"] = "\n".join(parts)
    rows = await connection.fetch("SELECT data::text AS data, metadata::text AS meta FROM events")
    dumps["events.data"] = "\n".join(row["data"] for row in rows)
    dumps["events.metadata"] = "\n".join(row["meta"] for row in rows)
    return dumps


def hits(dumps: dict[str, str], needles: Iterable[str]) -> list[tuple[str, str, str]]:
    """(value, where, the text around it) of each value found."""
    found = []
    for needle in sorted(needles):
        for table, text in dumps.items():
            at = text.find(needle)
            if at >= 0:
                found.append((needle, table, text[max(at - 60, 0) : at + 60]))
    return found


def assert_nothing_in_clear(dumps: dict[str, str], needles: Needles) -> None:
    assert dumps["public.events"], "the events were dumped"
    assert hits(dumps, needles.all()) == []


# --- the tests -------------------------------------------------------------------------------


def test_the_values_searched_for_are_the_ones_the_service_holds(
    live: LiveService, populated: Populated
) -> None:
    """Not a vacuous search: the reveal gives back every value sent, by API and by import."""
    revealed: set[str] = set()
    with live.client("regulator") as regulator:
        for case_id in [*populated.api_cases.values(), *populated.import_cases]:
            response = regulator.get(
                f"/v1/complaints/{case_id}/personal-data", params={"purpose": PURPOSE}
            )
            for event in ok(response)["events"]:
                revealed |= {value for value in event["fields"].values() if isinstance(value, str)}
    sent = {*API_TEXTS.values(), *IMPORT_TEXTS.values(), *API_IDS.values(), *IMPORT_IDS.values()}
    sent |= {*API_PHONES.values(), *IMPORT_PHONES.values()}
    assert sent <= revealed, sorted(sent - revealed)


async def test_every_personal_field_of_every_stored_event_is_sealed(
    populated: Populated, live: LiveService
) -> None:
    rows = await _fetch(live.database_url, "SELECT event_type, data, metadata FROM events")
    assert len(rows) > 100
    for row in rows:
        data = orjson.loads(row["data"]) if isinstance(row["data"], str) else row["data"]
        metadata = (
            orjson.loads(row["metadata"]) if isinstance(row["metadata"], str) else row["metadata"]
        )
        assert metadata.get("cipher_suite") == "aes-256-gcm", metadata
        _, personal = split_personal(row["event_type"], data)
        for where, value in personal.items():
            # an empty text is kept as it is: an AEAD would not hide it (a ciphertext's length)
            assert is_sealed(value) or value == "", (row["event_type"], where, path_pattern(where))


async def test_no_table_holds_a_personal_value_in_clear(
    populated: Populated, live: LiveService
) -> None:
    dumps = await stored_texts(live.database_url)
    assert {"public.events", "public.case_view", "public.idempotent_requests"} <= dumps.keys()
    assert "public.case_keys" not in dumps
    # the masked forms are there, the full values never
    assert "欧***" in dumps["public.case_view"]
    assert API_IDS["complainant"][:6] in dumps["public.case_view"]
    assert API_IDS["complainant"][-4:] in dumps["public.case_view"]
    assert_nothing_in_clear(dumps, populated.needles)


async def test_after_a_rebuild_no_table_holds_one_either(
    populated: Populated, live: LiveService
) -> None:
    before = await _fetch(live.database_url, "SELECT count(*) AS n FROM case_view")
    rebuilt = run_cli(live.database_url, "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    populated.cli_output += [rebuilt.stdout, rebuilt.stderr]
    after = await _fetch(live.database_url, "SELECT count(*) AS n FROM case_view")
    assert after[0]["n"] == before[0]["n"] == 3 + 2 + 40
    assert_nothing_in_clear(await stored_texts(live.database_url), populated.needles)


def test_the_serve_log_and_the_command_lines_output_hold_none(
    populated: Populated, live: LiveService
) -> None:
    log = live.log_path.read_text(encoding="utf-8", errors="replace")
    assert "/v1/complaints" in log, "the log records the requests"
    outputs = {"serve.log": log}
    outputs |= {f"cli output {n}": text for n, text in enumerate(populated.cli_output)}
    assert hits(outputs, populated.needles.all()) == []


async def test_the_scan_finds_a_value_stored_in_clear(
    populated: Populated, live: LiveService
) -> None:
    """The search itself is sound: an event stored in plaintext (as before encryption), in a
    transaction rolled back afterwards, is found by its name and by a mask showing too many
    digits, while masks as the service writes them are not."""
    pool = await create_pool(live.database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as connection:
            transaction = connection.transaction()
            await transaction.start()
            try:
                number, phone = API_IDS["complainant"], API_PHONES["complainant"]
                plain = {
                    "name": API_TEXTS["name"],
                    "id_number": number[:14] + "****",  # a mask that shows too much
                    "masked_id_number": mask_id_number(number),  # masks as the service masks
                    "masked_contact": mask_phone(phone),
                    "masked_name": mask_name(API_TEXTS["name"]),
                }
                event = NewEvent("LegacyNote", plain, metadata=EventMetadata(actor_id="canary"))
                store = PostgresEventStore(pool)
                await store.append("canary-stream", [event], 0, connection=connection)
                found = hits(await texts_of_tables(connection), populated.needles.all())
            finally:
                await transaction.rollback()
    finally:
        await pool.close()
    where = {(needle, table) for needle, table, _ in found}
    assert {(API_TEXTS["name"], "public.events"), (API_TEXTS["name"], "events.data")} <= where
    assert (number[:ID_WINDOW], "events.data") in where
    assert {needle for needle, _ in where} <= {API_TEXTS["name"], *windows(number, ID_WINDOW)}
