"""Who may see a case's personal data in plaintext (DOMAIN.md "Personal data", Reveal)."""

import pytest

from complaintcore.domain.roles import may_reveal


@pytest.mark.parametrize(
    ("role", "actor_id", "handler_id", "allowed"),
    [
        ("staff", "staff-a1", "staff-a1", True),  # the assigned handler
        ("staff", "staff-a2", "staff-a1", False),  # another staff member
        ("staff", "staff-a1", None, False),  # nobody assigned yet
        ("supervisor", "sup-ho1", "staff-a1", True),  # the subtree is checked before
        ("supervisor", "sup-ho1", None, True),
        ("regulator", "reg-1", None, True),
        ("admin", "admin-1", "admin-1", False),  # admins read the log, never the data
        ("admin", "admin-1", None, False),
        ("auditor", "x", "x", False),  # an unknown role
    ],
)
def test_may_reveal(role: str, actor_id: str, handler_id: str | None, allowed: bool) -> None:
    assert may_reveal(role, actor_id, handler_id) is allowed
