"""Structured logging: JSON lines in production, readable lines in a terminal.

Personal data never reaches a log (Art. 22): values under keys that carry it are replaced before
rendering, whoever logged them. Request bodies are never logged.

In JSON, every line is one JSON object, whoever logs: structlog's loggers and the standard
library's (uvicorn, asyncio, the driver) go through the same processors, and a traceback is one
field of its line (`exception`), never lines of its own; an exception nobody caught is logged
the same way before the process ends. (A command's one-line refusal, `cli.common.fail`, is not
a log line: it is printed as `complaintcore: <reason>` in either format.)
"""

import logging
import sys
import traceback
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


def exception_without_message(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """`exc_info` rendered as its traceback's frames and each exception's type, never its
    message: a driver's or a validator's message may quote a value (an identity number in a
    constraint violation), and no key names it for `redact_personal_data`."""
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    error = exc_info[1]
    if error is None:
        return event_dict
    event_dict["exception"] = "".join(_chain_without_messages(error))
    return event_dict


def _chain_without_messages(error: BaseException) -> list[str]:
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = type(current)
        frames = "".join(traceback.format_tb(current.__traceback__))
        lines.insert(
            0,
            f"Traceback (most recent call last):\n{frames}{kind.__module__}.{kind.__qualname__}\n",
        )
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return lines


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
    level_number = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[structlog.stdlib.add_logger_name, *shared, exception_without_message, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level_number),
        logger_factory=_NamedPrintLogger,
        cache_logger_on_first_use=True,
    )
    _route_standard_logging(shared, renderer, level_number)
    if use_json:
        sys.excepthook = _log_uncaught


def _route_standard_logging(
    shared: list[structlog.typing.Processor], renderer: structlog.typing.Processor, level: int
) -> None:
    """The standard library's records rendered by structlog's processors (structlog's
    `ProcessorFormatter`), on one handler of the root logger that every logger reaches."""
    handler = _CurrentStderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                exception_without_message,
                renderer,
            ],
        )
    )
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    root.handlers[:] = [kept for kept in root.handlers if kept.get_name() != _HANDLER_NAME]
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn.access is left as uvicorn sets it: `serve` turns access logs off (no propagation)
    for name in ("uvicorn", "uvicorn.error", "asyncio"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    # httpx logs each request's full URL at INFO: a webhook URL may carry a secret token
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


class _NamedPrintLogger(structlog.PrintLogger):
    """structlog's logger on stderr, knowing the name it was asked for (`get_logger(name)`), so
    that its lines carry `logger` as the standard library's do."""

    def __init__(self, name: str | None = None, *args: Any) -> None:
        super().__init__(file=sys.stderr)
        self.name = name


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to `sys.stderr` as it is when a record comes, not as it was when configured: a
    test runner swaps it, and a library logging at exit must not meet a closed stream."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_HANDLER_NAME = "complaintcore"  # configured again (tests, CLI then app): replaced, not doubled


def _log_uncaught(kind: type[BaseException], error: BaseException, traceback: Any) -> None:
    logging.getLogger("complaintcore").critical(
        "uncaught exception", exc_info=(kind, error, traceback)
    )
