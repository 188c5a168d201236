"""Webhook subscriptions and their deliveries (API.md "Webhooks").

Admins manage every subscription; supervisors those of their institution's subtree (others are
404, as absent). Everything else (the fan-out, signing, sending, retries) is in
complaintcore.webhooks.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from complaintcore.api.auth import CurrentPrincipal, FeedReader, Principal, forbidden
from complaintcore.api.deps import Institutions
from complaintcore.api.json_bodies import ExactJsonRoute
from complaintcore.api.problems import (
    FieldProblem,
    Problem,
    invalid,
    not_found,
    problem_responses,
)
from complaintcore.api.response_headers import location_header
from complaintcore.api.routes.complaint_queries import Cursor, Limit
from complaintcore.api.schemas.webhooks import (
    DeliveryListOut,
    DeliveryStatus,
    WebhookCreatedOut,
    WebhookIn,
    WebhookLagOut,
    WebhookListOut,
    WebhookOut,
)
from complaintcore.auth.principals import may_see
from complaintcore.webhooks.runtime import WebhookRuntime, webhook_lag
from complaintcore.webhooks.subscriptions import (
    DeliveryNotRetryable,
    InvalidCursor,
    Subscription,
    may_manage,
)
from complaintcore.webhooks.urls import UrlNotAllowed, check_url

router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=ExactJsonRoute)

WebhookId = Annotated[str, Path(max_length=64, description="The subscription's id.")]
DeliveryId = Annotated[str, Path(max_length=64, description="The delivery's id.")]
URL_NOT_ALLOWED = "webhook_url_not_allowed"


async def _runtime(request: Request) -> WebhookRuntime:
    return request.app.state.webhooks


Webhooks = Annotated[WebhookRuntime, Depends(_runtime)]


async def _manager(principal: CurrentPrincipal) -> Principal:
    if not may_manage(principal.role):
        raise forbidden("Webhooks are managed by admins and by supervisors for their subtree.")
    return principal


Manager = Annotated[Principal, Depends(_manager)]


async def _subscription(webhooks: WebhookRuntime, principal: Principal, id_: str) -> Subscription:
    subscription = await webhooks.store.visible(principal, id_)
    if subscription is None:
        raise not_found("webhook")
    return subscription


def _bad_cursor(error: InvalidCursor) -> Problem:
    return invalid([FieldProblem(field="cursor", code="invalid_cursor", message=str(error))])


WEBHOOK_LOCATION_HEADER = location_header(
    "The new subscription: `/v1/webhooks/{id}`.", r"^/v1/webhooks/[0-9a-f-]{36}$"
)


@router.post(
    "/webhooks",
    operation_id="create_webhook",
    status_code=201,
    response_model=WebhookCreatedOut,
    responses={
        201: {"headers": WEBHOOK_LOCATION_HEADER},
        **problem_responses(401, 403, 422, 503),
    },
)
async def create_webhook(
    principal: Manager,
    webhooks: Webhooks,
    institutions: Institutions,
    body: Annotated[WebhookIn, Body()],
    response: Response,
) -> dict[str, Any]:
    """Subscribe a URL to the alerts of an institution's subtree (admins; supervisors for their
    own subtree). The answer holds the signing `secret`, shown this once. 422
    `webhook_url_not_allowed` for a URL that is not https (or http to an allowed host), or whose
    host resolves to a private, loopback, link-local or otherwise non-global address the
    deployment does not allow; 422 `unknown_institution` for an institution outside the caller's
    subtree or unknown."""
    institution = await institutions.get(body.institution)
    if institution is None or not await may_see(principal, institution.code, institutions):
        raise invalid(
            [
                FieldProblem(
                    field="institution",
                    code="unknown_institution",
                    message="no such institution within your institution's subtree",
                )
            ],
            code="unknown_institution",
        )
    try:
        await check_url(body.url, webhooks.allow, webhooks.resolver)
    except UrlNotAllowed as error:
        raise invalid(
            [FieldProblem(field="url", code=URL_NOT_ALLOWED, message=str(error))],
            code=URL_NOT_ALLOWED,
        ) from None
    subscription, secret = await webhooks.store.create(
        principal, body.url, institution.code, body.events, body.description
    )
    response.headers["Location"] = f"/v1/webhooks/{subscription.id}"  # as every 201 says
    return {**subscription.as_dict(), "secret": secret.value}


@router.get(
    "/webhooks",
    operation_id="list_webhooks",
    response_model=WebhookListOut,
    responses=problem_responses(401, 403, 422, 503),
)
async def list_webhooks(
    principal: Manager, webhooks: Webhooks, limit: Limit = 50, cursor: Cursor = None
) -> dict[str, Any]:
    """The subscriptions the caller may see, oldest first (secrets are never shown again)."""
    try:
        return await webhooks.store.page(principal, limit, cursor)
    except InvalidCursor as error:
        raise _bad_cursor(error) from None


@router.get(
    "/webhooks/{webhook_id}",
    operation_id="get_webhook",
    response_model=WebhookOut,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def get_webhook(
    webhook_id: WebhookId, principal: Manager, webhooks: Webhooks
) -> dict[str, Any]:
    """One subscription (without its secret)."""
    return (await _subscription(webhooks, principal, webhook_id)).as_dict()


@router.delete(
    "/webhooks/{webhook_id}",
    operation_id="delete_webhook",
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def delete_webhook(webhook_id: WebhookId, principal: Manager, webhooks: Webhooks) -> Response:
    """Delete the subscription: nothing more is sent to it, not even deliveries still pending;
    its delivery history is kept."""
    subscription = await _subscription(webhooks, principal, webhook_id)
    if not await webhooks.store.delete(subscription.id):
        raise not_found("webhook")
    return Response(status_code=204)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    operation_id="list_webhook_deliveries",
    response_model=DeliveryListOut,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def list_webhook_deliveries(
    webhook_id: WebhookId,
    principal: Manager,
    webhooks: Webhooks,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The subscription's deliveries, newest alert first, optionally of one status."""
    subscription = await _subscription(webhooks, principal, webhook_id)
    try:
        return await webhooks.store.deliveries(subscription, status, limit, cursor)
    except InvalidCursor as error:
        raise _bad_cursor(error) from None


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    operation_id="retry_webhook_delivery",
    status_code=202,
    response_class=Response,
    responses={
        202: {"description": "The delivery is due now (a failed one is pending again)."},
        **problem_responses(401, 403, 404, 409, 422, 503),
    },
)
async def retry_webhook_delivery(
    webhook_id: WebhookId, delivery_id: DeliveryId, principal: Manager, webhooks: Webhooks
) -> Response:
    """Send the delivery again now: a `failed` one goes back to `pending` with a new 24-hour
    window of retries; a pending or retrying one is made due now. 409 `delivery_delivered` for
    one already delivered."""
    subscription = await _subscription(webhooks, principal, webhook_id)
    try:
        found = await webhooks.store.retry(subscription, delivery_id)
    except DeliveryNotRetryable:
        raise Problem(
            409, "delivery_delivered", "Conflict", "The delivery was delivered already."
        ) from None
    if not found:
        raise not_found("delivery")
    if webhooks.dispatcher is not None:
        webhooks.dispatcher.wake()
    return Response(status_code=202)


@router.get(
    "/projections/webhooks",
    operation_id="get_webhook_lag",
    response_model=WebhookLagOut,
    responses=problem_responses(401, 403, 503),
)
async def get_webhook_lag(
    request: Request, principal: FeedReader, webhooks: Webhooks
) -> dict[str, Any]:
    """How far the webhook fan-out is behind the alerts, and how many deliveries wait to be
    sent (regulators and admins, like `GET /v1/projections`)."""
    return await webhook_lag(request.app.state.pool, webhooks)
