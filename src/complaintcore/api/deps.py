"""`Annotated` dependency aliases for the services `create_app` puts on `app.state`.

The providers are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread,
a thread hop per request for an attribute read.
"""

from typing import Annotated

from fastapi import Depends, Header, Request

from complaintcore.application.complaint_service import ComplaintService
from complaintcore.application.policy_store import PolicyStore
from complaintcore.infra.read_replicas import ReplicaSet
from complaintcore.reference.calendars import CalendarRepository
from complaintcore.reference.institutions import InstitutionDirectory


async def institution_directory(request: Request) -> InstitutionDirectory:
    return request.app.state.institutions


async def calendar_repository(request: Request) -> CalendarRepository:
    return request.app.state.calendars


async def policy_store(request: Request) -> PolicyStore:
    return request.app.state.policies


async def complaint_service(request: Request) -> ComplaintService:
    return request.app.state.complaints


async def replica_set(request: Request) -> ReplicaSet:
    return request.app.state.reads


Institutions = Annotated[InstitutionDirectory, Depends(institution_directory)]
Calendars = Annotated[CalendarRepository, Depends(calendar_repository)]
Complaints = Annotated[ComplaintService, Depends(complaint_service)]
Policies = Annotated[PolicyStore, Depends(policy_store)]
Reads = Annotated[ReplicaSet, Depends(replica_set)]
# A command's answer names its commit position; a read that sends it back is served only where
# that write is visible (a read replica that has replayed it, else the primary).
ConsistencyPosition = Annotated[
    int | None,
    Header(
        alias="Consistency-Position",
        ge=1,
        le=2**63 - 1,
        description="The `Consistency-Position` of a command's answer: read what it wrote.",
    ),
]
