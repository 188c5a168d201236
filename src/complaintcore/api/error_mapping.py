"""How the application's and the domain's refusals become problem+json responses."""

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from complaintcore.api.auth import unknown_token
from complaintcore.api.problems import (
    RETRY_AFTER_SECONDS,
    FieldProblem,
    Problem,
    invalid,
    master_key_rotated,
    not_found,
    problem_response,
)
from complaintcore.application.complaint_service import (
    ActorNotConfirmed,
    CaseNotFound,
    IdempotencyKeyReused,
    NotPermitted,
    PersonalDataNotEncrypted,
    PreconditionFailed,
    UnknownInstitution,
    VersionNotFound,
)
from complaintcore.application.personal_data_reveal import PersonalDataGone
from complaintcore.crypto.keys import MasterKeyRejected
from complaintcore.crypto.suites import SuiteUnavailable
from complaintcore.domain.rules import InvalidCommand, RuleViolation
from complaintcore.events.codec import STREAM_DAMAGED, UNREADABLE_STREAM
from complaintcore.events.model import ConcurrencyError, InvalidEventData
from complaintcore.events.stream_cipher import CASE_KEY_UNUSABLE, CaseKeyUnusable

log = structlog.get_logger("complaintcore.api")

# A rule refusal is a 409, except that a case whose personal data is erased is gone for good.
_GONE = "personal_data_erased"


def rule_refused(violation: RuleViolation) -> Problem:
    return Problem(
        410 if violation.code == _GONE else 409,
        violation.code,
        "Refused by a business rule",
        f"{violation.message} [{violation.article}]",
        article=violation.article,
    )


def command_invalid(error: InvalidCommand) -> Problem:
    return invalid(
        [FieldProblem(field=e.field, code=e.code, message=e.message) for e in error.errors]
    )


def _mapping(error: Exception) -> Problem:
    match error:
        case RuleViolation():
            return rule_refused(error)
        case InvalidCommand():
            return command_invalid(error)
        case CaseNotFound() | VersionNotFound():
            return not_found("complaint")
        case PreconditionFailed():
            return Problem(
                412,
                "precondition_failed",
                "Precondition failed",
                f"The case moved on: it is at version {error.current_version}.",
                headers={"ETag": f'"{error.current_version}"'},
            )
        case IdempotencyKeyReused(forgotten=forgotten):
            message = (
                "this key was used for a case whose personal data has since been erased: "
                "whether this is the same request can no longer be told; send it with a new key"
                if forgotten
                else "this key was already used with another request body"
            )
            return invalid(
                [
                    FieldProblem(
                        field="Idempotency-Key", code="idempotency_key_reused", message=message
                    )
                ],
                code="idempotency_key_reused",
            )
        case NotPermitted():
            return Problem(403, error.code, "Forbidden", error.message)
        case PersonalDataNotEncrypted():
            return Problem(
                409,
                "personal_data_not_encrypted",
                "Refused",
                "The case has events stored before personal data was encrypted; destroying its "
                "key would not erase them.",
            )
        case PersonalDataGone():
            return Problem(
                410,
                _GONE,
                "Gone",
                "The case's personal data was erased when its retention ended; only its "
                "non-personal record remains.",
            )
        case ActorNotConfirmed():
            return unknown_token()
        case UnknownInstitution():
            return invalid(
                [
                    FieldProblem(
                        field="respondent_institution",
                        code="unknown_institution",
                        message="no such institution within your institution's subtree",
                    )
                ]
            )
        case InvalidEventData():
            return invalid([FieldProblem(field="body", code="not_storable", message=str(error))])
        case ConcurrencyError():
            return Problem(
                409,
                "concurrent_modification",
                "Conflict",
                "The case kept changing under this command; retry it.",
            )
        case MasterKeyRejected():
            # start-up refused any other key, so at run time this is a rotation since then;
            # the message names key ids and the key file, never a key
            log.warning("master key rotated out: restart with the new key file", error=str(error))
            return master_key_rotated()
        case SuiteUnavailable():
            # a case sealed under a suite this build's OpenSSL cannot run (SM4 missing from a
            # system OpenSSL, say): the operator's to mend, the case is whole (found by a
            # review pass: a 500)
            log.error("a case's cipher suite is not available here", error=str(error))
            return Problem(
                503,
                "cipher_suite_unavailable",
                "Service unavailable",
                "The case is sealed under a cipher suite this server's cryptography library "
                "cannot run; it is served again once a server that can is up.",
                headers={"Retry-After": RETRY_AFTER_SECONDS},
            )
        case CaseKeyUnusable():
            # the events are intact, the key table is not: restored from an older backup, or
            # a row deleted or altered by hand (the case id is no personal data)
            log.error("a case's data key is missing or altered", case_id=error.case_id)
            return Problem(
                409,
                CASE_KEY_UNUSABLE,
                "Conflict",
                "The case's data key is missing or does not unwrap, though its personal data "
                "was never erased: restore its row of case_keys from a backup. Its audit "
                "(GET /v1/complaints/{id}/audit) still verifies its events.",
            )
        case _ if isinstance(error, UNREADABLE_STREAM):
            # stored rows that cannot be read as the store wrote them: altered behind its back
            log.error("a case's stored events cannot be read", error=type(error).__name__)
            return Problem(
                409,
                STREAM_DAMAGED,
                "Conflict",
                "The case's stored events cannot be read as they were written; its audit "
                "(GET /v1/complaints/{id}/audit) names the version that was altered.",
            )
    raise error


MAPPED = (
    RuleViolation,
    InvalidCommand,
    CaseNotFound,
    VersionNotFound,
    PreconditionFailed,
    IdempotencyKeyReused,
    NotPermitted,
    PersonalDataGone,
    PersonalDataNotEncrypted,
    ActorNotConfirmed,
    UnknownInstitution,
    InvalidEventData,
    ConcurrencyError,
    MasterKeyRejected,
    SuiteUnavailable,
    *UNREADABLE_STREAM,
)


def install_domain_problem_handlers(app: FastAPI) -> None:
    for error_type in MAPPED:

        @app.exception_handler(error_type)
        async def on_refusal(request: Request, error: Exception) -> JSONResponse:
            return problem_response(_mapping(error))
