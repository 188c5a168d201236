"""A sweep's order takes the erasure's ground as a single-case erasure does, by the decider's own
check (found by a review pass: an order built without the command line took a reason naming a
mobile number, and each case's erasure was then refused one by one)."""

from datetime import date

import pytest

from complaintcore.application.retention_sweep import SweepOrder


@pytest.mark.parametrize(
    ("reason", "legal_basis"),
    [
        ("投诉人 138 0013 8000 申请删除", "《个人信息保护法》第四十七条"),
        ("保存期限届满", "11010519491231002X"),
        ("", "《个人信息保护法》第四十七条"),
    ],
)
def test_an_order_whose_ground_a_single_erasure_refuses_is_refused(
    reason: str, legal_basis: str
) -> None:
    with pytest.raises(ValueError, match="ground") as refused:
        SweepOrder(date(2026, 6, 1), "c", reason=reason, legal_basis=legal_basis)
    assert "13800138000" not in str(refused.value) and "138 0013" not in str(refused.value)


def test_an_order_with_a_plain_ground_is_taken() -> None:
    order = SweepOrder(date(2026, 6, 1), "c", reason="保存期限届满", legal_basis="PIPL Art. 47")
    assert order.reason == "保存期限届满"
