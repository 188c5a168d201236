"""Merging a duplicate (DOMAIN.md "Taxonomy": counted once) needs a target still being handled."""

import pytest
from builders import assigned_case, d, decided_case, received_case, withdraw

from complaintcore.domain import InvalidCommand, RuleViolation
from complaintcore.domain.decider import check_merge_target


def test_a_received_or_assigned_target_takes_the_duplicate() -> None:
    check_merge_target(received_case(d("2026-03-02")).state)
    check_merge_target(assigned_case(d("2026-03-02")).state)


def test_an_unknown_target_is_a_bad_field() -> None:
    with pytest.raises(InvalidCommand) as invalid:
        check_merge_target(None)
    assert [(e.field, e.code) for e in invalid.value.errors] == [("into", "unknown_case")]


@pytest.mark.parametrize(
    "closed_target",
    [
        lambda: decided_case(d("2026-03-02"), d("2026-03-10")),
        lambda: _withdrawn(),
    ],
    ids=["decided", "withdrawn"],
)
def test_a_target_no_longer_handled_is_refused(closed_target) -> None:
    with pytest.raises(RuleViolation) as refused:
        check_merge_target(closed_target().state)
    assert (refused.value.code, refused.value.article) == ("merge_target_not_open", "Art. 18")


def _withdrawn():
    case = received_case(d("2026-03-02"))
    case.do(withdraw(d("2026-03-03")))
    return case
