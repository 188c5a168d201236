"""The policy in force: which `InstitutionPolicy` judges a command on a case or reads it.

A command is judged under the policy in force at the case's respondent institution on the
command's business date (`command_business_date`), a case read under the one in force today;
both come from the stored versions (`policy_store.PolicyStore`, resolved by
`domain.policy.resolve_policy`). `policy_in_force` (synchronous, DOMAIN.md's defaults) remains
where no stored setting is read: the registration number's format (the bulk import's numbers)
and the retention sweep's context before each case's own policy is put in it.
"""

from datetime import date
from typing import Any

from complaintcore.domain.commands import ApproveRedress, own_business_date
from complaintcore.domain.policy import DEFAULT_POLICY, InstitutionPolicy, ResolvedPolicy
from complaintcore.domain.roles import Role

DEFAULT_POLICY_TEXT = "the default policy"


def policy_in_force(institution: str | None, on: date | None = None) -> InstitutionPolicy:
    """DOMAIN.md's default policy, for callers that do not read the stored versions yet."""
    return DEFAULT_POLICY


def command_business_date(command: Any, today: date) -> date:
    """The day `command` is judged at: its own (`domain.commands.own_business_date`), else
    `today` (assign, recuse, merge, flag-major happen the day they are handled)."""
    return own_business_date(command) or today


def limit_lineage(
    command: Any, actor_institution: str | None, lineage: tuple[str, ...]
) -> tuple[str, ...]:
    """The lineage whose policy sets the caller's redress limit, for a case whose respondent's
    `lineage` runs up to its head office. The decider's limit is the one at the case's
    institution; an approver's is their own (DOMAIN.md "Redress authority": "a principal whose
    own limit covers the amount, at the case's institution or above"), the one in force at
    their institution, which is on the case's lineage when they may approve at all: a superior
    approves what the case's own supervisors may not, whatever the case's node sets for them."""
    if isinstance(command, ApproveRedress) and actor_institution in lineage:
        return lineage[lineage.index(actor_institution) :]
    return lineage


def redress_authority(
    policy: InstitutionPolicy | ResolvedPolicy, actor_role: str, actor_is_head_office: bool
) -> tuple[int | None, str]:
    """The most redress (fen) a principal of `actor_role` may decide without an approval under
    `policy` (DOMAIN.md "Redress authority"), None for no limit, and where the limit comes from
    in words. A head-office supervisor has no limit; a role that decides no complaint has 0."""
    if actor_role == Role.SUPERVISOR and actor_is_head_office:
        return None, "a head-office supervisor has no redress limit"
    if actor_role not in (Role.STAFF, Role.SUPERVISOR):
        return 0, f"a {actor_role} decides no redress"
    name = f"redress_limits_fen.{actor_role}"
    if isinstance(policy, ResolvedPolicy):
        value = policy.value_named(name)
        origin = DEFAULT_POLICY_TEXT if value.version is None else f"policy {value.version}"
        return int(value.value), f"{name} of {origin}"
    return getattr(policy.redress_limits_fen, str(actor_role)), f"{name} of the policy"


def decision_authority(
    policy: InstitutionPolicy | ResolvedPolicy,
    actor_role: str,
    actor_institution: str | None,
    lineage: tuple[str, ...],
    case_tree: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The fields of `DecisionContext` the internal-control rules judge the caller by, for a
    case whose respondent's `lineage` runs from it up to its head office: the caller's redress
    limit under `policy` and where it comes from, whether the caller sits at or above the
    respondent, and the institutions an attribution may name (`case_tree`; read only for one)."""
    head_office = lineage[-1] if lineage else None
    at_head_office = actor_institution is not None and actor_institution == head_office
    limit, source = redress_authority(policy, actor_role, at_head_office)
    return {
        "redress_limit_fen": limit,
        "redress_limit_source": source,
        "actor_at_or_above_respondent": actor_institution in lineage,
        "institutions_of_case_tree": case_tree,
    }
