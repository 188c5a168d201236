"""`Annotated` dependency aliases for the services `create_app` puts on `app.state`."""

from typing import Annotated

from fastapi import Depends, Request

from complaintcore.application.complaint_service import ComplaintService
from complaintcore.calendars import CalendarRepository
from complaintcore.institutions import InstitutionDirectory


def institution_directory(request: Request) -> InstitutionDirectory:
    return request.app.state.institutions


def calendar_repository(request: Request) -> CalendarRepository:
    return request.app.state.calendars


def complaint_service(request: Request) -> ComplaintService:
    return request.app.state.complaints


Institutions = Annotated[InstitutionDirectory, Depends(institution_directory)]
Calendars = Annotated[CalendarRepository, Depends(calendar_repository)]
Complaints = Annotated[ComplaintService, Depends(complaint_service)]
