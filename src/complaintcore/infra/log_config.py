"""Structured logging: JSON lines in production, readable lines in a terminal.

Personal data never reaches a log (Art. 22): values under keys that carry it are replaced before
rendering, whoever logged them. Request bodies are never logged.
"""

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

PERSONAL_DATA_KEYS = frozenset(
    {
        "name",
        "complainant",
        "agent",
        "id_number",
        "contact",
        "phone",
        "address",
        "representatives",
        "legal_representative",
        "respondent_staff",
        "email",
    }
)
REDACTED = "[redacted]"


def redact_personal_data(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in event_dict.keys() & PERSONAL_DATA_KEYS:
        event_dict[key] = REDACTED
    return event_dict


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_personal_data,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
