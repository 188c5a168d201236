"""Complaint categories: channel, business type and cause (DOMAIN.md "Taxonomy").

The three dimensions follow the banking complaint-statistics standard JR/T 0169-2018. Channels
are fixed by the receiving rules (Art. 12); business types and causes are per-institution
reference data (`Taxonomy`, carried by `InstitutionPolicy`), so an institution can add its own.
Codes are stable: events and statistics store the code, never the label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

CODE_PATTERN = r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*"
"""A taxonomy code: snake_case ASCII, stable for good (events and statistics keep it)."""
MAX_CODE_LENGTH = 64
_SNAKE_CASE = re.compile(CODE_PATTERN)


def code_listed_twice(codes: Iterable[str]) -> str | None:
    """The first code of `codes` listed again, None when each is listed once (codes are unique
    within a dimension)."""
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            return code
        seen.add(code)
    return None


def _check_unique_codes(dimension: str, items: tuple[TaxonomyItem, ...]) -> None:
    for item in items:
        if not isinstance(item, TaxonomyItem):
            raise ValueError(f"{dimension}: {item!r} is not a TaxonomyItem")
    twice = code_listed_twice(item.code for item in items)
    if twice is not None:
        raise ValueError(f"{dimension}: code {twice!r} is listed twice")


@dataclass(frozen=True)
class TaxonomyItem:
    code: str
    label_zh: str
    label_en: str

    def __post_init__(self) -> None:
        if not _SNAKE_CASE.fullmatch(self.code):
            raise ValueError(f"taxonomy code {self.code!r} is not snake_case")
        for field_name in ("label_zh", "label_en"):
            if not getattr(self, field_name).strip():
                raise ValueError(f"taxonomy item {self.code!r} has an empty {field_name}")


@dataclass(frozen=True)
class Taxonomy:
    """The business types and causes a complaint can be filed under."""

    business: tuple[TaxonomyItem, ...]
    causes: tuple[TaxonomyItem, ...]
    # Looked up for every complaint received (a bulk import checks thousands a second).
    _business_codes: frozenset[str] = field(init=False, repr=False, compare=False)
    _cause_codes: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "business", tuple(self.business))
        object.__setattr__(self, "causes", tuple(self.causes))
        if not self.business or not self.causes:
            raise ValueError("a taxonomy lists at least one business type and one cause")
        _check_unique_codes("business", self.business)
        _check_unique_codes("causes", self.causes)
        object.__setattr__(self, "_business_codes", frozenset(i.code for i in self.business))
        object.__setattr__(self, "_cause_codes", frozenset(i.code for i in self.causes))

    def has_business(self, code: str) -> bool:
        return code in self._business_codes

    def has_cause(self, code: str) -> bool:
        return code in self._cause_codes


CHANNELS: tuple[TaxonomyItem, ...] = (
    TaxonomyItem("phone", "电话", "phone"),
    TaxonomyItem("online", "网络", "online"),
    TaxonomyItem("in_person", "现场", "in person"),
    TaxonomyItem("letter", "信函", "letter"),
    TaxonomyItem("email", "电子邮件", "email"),
    TaxonomyItem("regulator_transfer", "监管转办", "regulator transfer"),
)

BANK_BUSINESS: tuple[TaxonomyItem, ...] = (
    TaxonomyItem("debit_card", "借记卡", "debit card"),
    TaxonomyItem("credit_card", "信用卡", "credit card"),
    TaxonomyItem("loans", "贷款", "loans"),
    TaxonomyItem("payment_settlement", "支付结算", "payment settlement"),
    TaxonomyItem("debt_collection", "债务催收", "debt collection"),
    TaxonomyItem("foreign_exchange", "外汇", "foreign exchange"),
    TaxonomyItem("savings", "储蓄", "savings"),
    TaxonomyItem("agency_business", "代理业务", "agency business"),
    TaxonomyItem("other_intermediary_business", "其他中间业务", "other intermediary business"),
    TaxonomyItem(
        "personal_financial_information", "个人金融信息", "personal financial information"
    ),
    TaxonomyItem("precious_metals", "贵金属", "precious metals"),
    TaxonomyItem("rmb_management", "人民币管理", "RMB management"),
    TaxonomyItem("wealth_management", "理财", "wealth management"),
    TaxonomyItem("treasury", "国库", "treasury"),
)

INSURANCE_BUSINESS: tuple[TaxonomyItem, ...] = (
    TaxonomyItem("property_insurance_claims", "财产保险理赔", "property insurance claims"),
    TaxonomyItem("life_insurance_claims", "人身保险理赔", "life insurance claims"),
    TaxonomyItem("insurance_sales", "保险销售", "sales"),
    TaxonomyItem("surrender", "退保", "surrender"),
    TaxonomyItem("policy_service", "保单保全", "policy service"),
)

OTHER_BUSINESS = TaxonomyItem("other", "其他", "other")

CAUSES: tuple[TaxonomyItem, ...] = (
    TaxonomyItem("rules_and_processes", "制度流程", "rules and processes"),
    TaxonomyItem("pricing_and_fees", "定价收费", "pricing and fees"),
    TaxonomyItem("facilities_and_systems", "服务设施、设备、业务系统", "facilities and systems"),
    TaxonomyItem("service_attitude", "服务态度", "service attitude"),
    TaxonomyItem("collection_methods", "债务催收方式和手段", "collection methods"),
    TaxonomyItem("disclosure", "信息披露", "disclosure"),
    TaxonomyItem("fund_safety", "资金安全", "fund safety"),
    TaxonomyItem("marketing", "营销方式和手段", "marketing"),
    TaxonomyItem("information_security", "消费者信息安全", "information security"),
    TaxonomyItem("other", "其他", "other"),
)

DEFAULT_TAXONOMY = Taxonomy(
    business=(*BANK_BUSINESS, *INSURANCE_BUSINESS, OTHER_BUSINESS),
    causes=CAUSES,
)

_CHANNEL_CODES = frozenset(item.code for item in CHANNELS)


def is_channel(code: str) -> bool:
    """Whether `code` is one of the fixed receiving channels (`CHANNELS`)."""
    return code in _CHANNEL_CODES
