"""Bodies and answers of `/v1/webhooks` (API.md "Webhooks")."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from complaintcore.reference.institutions import (
    INSTITUTION_CODE_PATTERN,
    MAX_INSTITUTION_CODE_LENGTH,
)
from complaintcore.webhooks.subscriptions import ALERT_EVENTS, ALL_EVENTS, DELIVERY_STATUSES
from complaintcore.webhooks.urls import MAX_URL_LENGTH

EventName = Literal[(ALL_EVENTS, *ALERT_EVENTS)]  # type: ignore[valid-type]
DeliveryStatus = Literal[DELIVERY_STATUSES]  # type: ignore[valid-type]


class WebhookIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.bank.example/complaints",
                    "institution": "BR-A",
                    "events": ["case.overdue", "case.major"],
                    "description": "上海分行投诉预警",
                }
            ]
        },
    )

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Where deliveries are POSTed: `https`, or `http` to a host the deployment "
        "allows; private, loopback and link-local addresses are refused unless allowed.",
    )
    institution: str = Field(
        pattern=INSTITUTION_CODE_PATTERN,
        max_length=MAX_INSTITUTION_CODE_LENGTH,
        description="Alerts of this institution and its whole subtree are delivered.",
    )
    events: list[EventName] = Field(
        min_length=1, max_length=20, description="Alert names (DOMAIN.md), or `*` for all."
    )
    description: str | None = Field(default=None, max_length=500)


class WebhookOut(BaseModel):
    id: str
    url: str
    institution: str
    events: list[str]
    description: str | None
    created_by: str
    created_at: datetime


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(
        description="The signing secret, shown this once: HMAC-SHA256 key of "
        "`Complaintcore-Signature`."
    )


class WebhookListOut(BaseModel):
    items: list[WebhookOut]
    next_cursor: str | None


class DeliveryOut(BaseModel):
    delivery_id: str = Field(description="Fixed when the delivery is made; a re-send keeps it.")
    event: str
    case_id: str
    attempts: int
    status: DeliveryStatus = Field(
        description="`pending` (not tried yet, or due again now), `retrying` (failed, waiting "
        "out its back-off), `delivered` (a 2xx came back), `failed` (24 hours of retries spent)."
    )
    last_status_code: int | None
    next_attempt_at: datetime | None = Field(description="Null once delivered or failed.")


class DeliveryListOut(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class FanoutLagOut(BaseModel):
    checkpoint: int = Field(description="The last alert id turned into deliveries.")
    head: int = Field(description="The last alert id.")
    lag_alerts: int = Field(description="Alerts not fanned out yet.")


class DispatchLagOut(BaseModel):
    open: int = Field(description="Deliveries pending or retrying.")
    retrying: int
    failed: int
    due: int = Field(description="Open deliveries due now and not in flight.")
    in_flight: int
    oldest_unsent_age_s: float = Field(
        description="Seconds the oldest never-tried delivery has waited (0: none)."
    )


class WebhookLagOut(BaseModel):
    fanout: FanoutLagOut
    dispatch: DispatchLagOut
    workers: Literal["here", "elsewhere", "none"] = Field(
        description="Where the webhook workers run: `here` (this process, or this `serve`'s "
        "runner process), `elsewhere` (another runner process is connected to the database), "
        "`none`."
    )
