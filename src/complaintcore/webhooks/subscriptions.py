"""Subscriptions and their deliveries, as the routes make, read and change them.

Who: admins for any institution, supervisors for their institution's subtree (`may_manage`); a
subscription outside one's subtree is answered as absent (404), like a case.

A subscription gets the alerts of its institution and of every institution below it, for the
alert names it lists (or every one, `*`). Its secret is returned by `create` only.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from complaintcore.auth.principals import Principal, may_see
from complaintcore.domain.roles import Role
from complaintcore.projections.alerts import AlertName
from complaintcore.projections.case_queries import (
    InvalidCursor,
    cursor_instant,
    cursor_row_id,
    cursor_uuid,
    decode_cursor,
    encode_cursor,
)
from complaintcore.reference.institutions import InstitutionDirectory
from complaintcore.webhooks.signing import Secret, SecretSource, new_secret

__all__ = [
    "ALERT_EVENTS",
    "ALL_EVENTS",
    "DELIVERY_STATUSES",
    "WEBHOOK_MANAGERS",
    "DeliveryNotRetryable",
    "InvalidCursor",
    "Subscription",
    "SubscriptionStore",
    "may_manage",
]

# DOMAIN.md "Alerts and escalation": the names the alert runner writes
ALERT_EVENTS = tuple(name.value for name in AlertName)
ALL_EVENTS = "*"
DELIVERY_STATUSES = ("pending", "retrying", "delivered", "failed")
WEBHOOK_MANAGERS = frozenset({Role.ADMIN, Role.SUPERVISOR})


def may_manage(role: str) -> bool:
    return role in WEBHOOK_MANAGERS


class DeliveryNotRetryable(Exception):
    """A retry asked for a delivery that was delivered already."""


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    institution: str
    events: list[str]
    description: str | None
    created_by: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "institution": self.institution,
            "events": self.events,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


_SUBSCRIPTIONS_LIST = "webhooks"
_DELIVERIES_LIST = "webhook-deliveries"
_COLUMNS = "id::text AS id, url, institution, events, description, created_by, created_at"
_INSERT = f"""
INSERT INTO webhook_subscriptions
    (id, url, institution, events, description, secret_sealed, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING {_COLUMNS}
"""
_SELECT_ONE = f"SELECT {_COLUMNS} FROM webhook_subscriptions WHERE id = $1 AND deleted_at IS NULL"
_SELECT_PAGE = f"""
SELECT {_COLUMNS} FROM webhook_subscriptions
WHERE deleted_at IS NULL
  AND ($1::text[] IS NULL OR institution = ANY($1))
  AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
ORDER BY created_at, id
LIMIT $4
"""
_DELETE = """
UPDATE webhook_subscriptions SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL
"""
_DELIVERY_COLUMNS = """
delivery_id::text AS delivery_id, alert_id, event, case_id, attempts, status, last_status_code,
CASE WHEN status IN ('pending', 'retrying') THEN greatest(next_attempt_at, leased_until) END
    AS next_attempt_at,
first_attempt_at, delivered_at, created_at
"""
# A delivery is shown and retried only while its case's institution is still within the
# subscription's subtree ($5): the tree can change, and who may see a case is judged as it
# stands now, as on every other route (found by a review pass: a sub-branch moved to another
# branch left its cases' deliveries listed and retryable by the old branch's supervisor).
_SELECT_DELIVERIES = f"""
SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries
WHERE subscription_id = $1
  AND ($2::text IS NULL OR status = $2)
  AND ($3::bigint IS NULL OR alert_id < $3)
  AND institution = ANY($5::text[])
ORDER BY alert_id DESC
LIMIT $4
"""
_RETRY = """
UPDATE webhook_deliveries
SET status = CASE WHEN status = 'failed' THEN 'pending' ELSE status END,
    first_attempt_at = CASE WHEN status = 'failed' THEN NULL ELSE first_attempt_at END,
    next_attempt_at = now()
WHERE subscription_id = $1 AND delivery_id = $2 AND status <> 'delivered'
  AND institution = ANY($3::text[])
RETURNING status
"""
_DELIVERY_STATUS = """
SELECT status FROM webhook_deliveries
WHERE subscription_id = $1 AND delivery_id = $2 AND institution = ANY($3::text[])
"""


class SubscriptionStore:
    def __init__(
        self, pool: asyncpg.Pool, directory: InstitutionDirectory, box: SecretSource
    ) -> None:
        self._pool = pool
        self._directory = directory
        self._box = box

    async def create(
        self,
        principal: Principal,
        url: str,
        institution: str,
        events: Sequence[str],
        description: str | None,
    ) -> tuple[Subscription, Secret]:
        """A new subscription and its secret (the only time the secret leaves the store)."""
        subscription_id = str(uuid.uuid4())
        secret = new_secret()
        sealed = (await self._box.box()).seal(subscription_id, secret)
        row = await self._pool.fetchrow(
            _INSERT,
            subscription_id,
            url,
            institution,
            list(dict.fromkeys(events)),
            description,
            sealed,
            principal.id,
        )
        return _subscription(row), secret

    async def visible(self, principal: Principal, subscription_id: str) -> Subscription | None:
        """The subscription, if it exists, is not deleted and the principal may see it."""
        subscription_id = canonical_uuid(subscription_id) or ""
        if not subscription_id:
            return None
        row = await self._pool.fetchrow(_SELECT_ONE, subscription_id)
        if row is None or not await may_see(principal, row["institution"], self._directory):
            return None
        return _subscription(row)

    async def page(self, principal: Principal, limit: int, cursor: str | None) -> dict[str, Any]:
        """The subscriptions the principal may see, oldest first: `{items, next_cursor}`."""
        institutions = None
        if principal.role == Role.SUPERVISOR:
            institutions = await self._directory.subtree(principal.institution or "")
        after_at, after_id = None, None
        if cursor is not None:
            at_text, id_text = decode_cursor(_SUBSCRIPTIONS_LIST, cursor)
            after_at, after_id = cursor_instant(at_text), cursor_uuid(id_text)
        rows = await self._pool.fetch(_SELECT_PAGE, institutions, after_at, after_id, limit + 1)
        page = [_subscription(row) for row in rows[:limit]]
        next_cursor = (
            encode_cursor(_SUBSCRIPTIONS_LIST, (page[-1].created_at.isoformat(), page[-1].id))
            if len(rows) > limit
            else None
        )
        return {"items": [item.as_dict() for item in page], "next_cursor": next_cursor}

    async def delete(self, subscription_id: str) -> bool:
        subscription_id = canonical_uuid(subscription_id) or ""
        if not subscription_id:
            return False
        result = await self._pool.execute(_DELETE, subscription_id)
        return result != "UPDATE 0"

    async def deliveries(
        self, subscription: Subscription, status: str | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """One page of the subscription's deliveries, newest alert first (of cases within its
        institution's subtree as it stands)."""
        before = None
        if cursor is not None:
            alert_text, delivery_text = decode_cursor(_DELIVERIES_LIST, cursor)
            before = cursor_row_id(alert_text)
            cursor_uuid(delivery_text)  # written beside the alert; only the alert is read on
        rows = await self._pool.fetch(
            _SELECT_DELIVERIES,
            canonical_uuid(subscription.id),
            status,
            before,
            limit + 1,
            await self._directory.subtree(subscription.institution),
        )
        page = [dict(row) for row in rows[:limit]]
        next_cursor = (
            encode_cursor(_DELIVERIES_LIST, (str(page[-1]["alert_id"]), page[-1]["delivery_id"]))
            if len(rows) > limit
            else None
        )
        return {"items": page, "next_cursor": next_cursor}

    async def retry(self, subscription: Subscription, delivery_id: str) -> bool:
        """Make the delivery due now (a failed one back to `pending`, with a new 24-hour
        window); False when there is no such delivery (of a case within the subscription's
        subtree as it stands); `DeliveryNotRetryable` when delivered."""
        subscription_id = canonical_uuid(subscription.id) or ""
        delivery_id = canonical_uuid(delivery_id) or ""
        if not subscription_id or not delivery_id:
            return False
        async with self._pool.acquire() as connection:
            subtree = await self._directory.subtree(subscription.institution, connection=connection)
            updated = await connection.fetchval(_RETRY, subscription_id, delivery_id, subtree)
            if updated is not None:
                return True
            status = await connection.fetchval(
                _DELIVERY_STATUS, subscription_id, delivery_id, subtree
            )
        if status is None:
            return False
        raise DeliveryNotRetryable(delivery_id)


def _subscription(row: asyncpg.Record) -> Subscription:
    return Subscription(
        id=row["id"],
        url=row["url"],
        institution=row["institution"],
        events=list(row["events"]),
        description=row["description"],
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


def canonical_uuid(text: str) -> str | None:
    """`text` as PostgreSQL's uuid input takes it (Python's `uuid.UUID` also reads `{…}` and
    `urn:uuid:…`, which the driver refuses), or None when it is no UUID."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None
