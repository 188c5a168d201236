"""`Annotated` dependency aliases for the services `create_app` puts on `app.state`.

The providers are `async def` on purpose: FastAPI runs a plain `def` dependency in a worker thread,
a thread hop per request for an attribute read.
"""

from typing import Annotated

from fastapi import Depends, Request

from complaintcore.application.complaint_service import ComplaintService
from complaintcore.application.policy_store import PolicyStore
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


Institutions = Annotated[InstitutionDirectory, Depends(institution_directory)]
Calendars = Annotated[CalendarRepository, Depends(calendar_repository)]
Complaints = Annotated[ComplaintService, Depends(complaint_service)]
Policies = Annotated[PolicyStore, Depends(policy_store)]
