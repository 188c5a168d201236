"""The policy in force: which `InstitutionPolicy` judges a command on a case or reads it.

Every reader and writer asks here (the service, the queries, the audit, bulk import), so that
per-institution policies with a history (DOMAIN.md "Institution policy") change this one place.
Today every institution runs on DOMAIN.md's defaults.
"""

from datetime import date

from complaintcore.domain.policy import DEFAULT_POLICY, InstitutionPolicy


def policy_in_force(institution: str | None, on: date | None = None) -> InstitutionPolicy:
    """The policy of `institution` (None: the service-wide default) on business date `on`
    (None: today)."""
    return DEFAULT_POLICY
