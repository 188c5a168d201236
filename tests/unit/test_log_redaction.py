import json
import subprocess
import sys

import pytest
import structlog

from complaintcore.infra.log_config import configure_logging


@pytest.fixture(autouse=True)
def reset_structlog() -> None:
    yield
    structlog.reset_defaults()


def test_personal_data_is_redacted_whoever_logs_it(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", "info")
    structlog.get_logger("x").info(
        "received", name="张三", id_number="11010519491231002X", phone="13800138000", case="c-1"
    )
    line = json.loads(capsys.readouterr().err.strip())
    assert line["case"] == "c-1"
    for key in ("name", "id_number", "phone"):
        assert line[key] == "[redacted]"
    assert "张三" not in json.dumps(line, ensure_ascii=False)


def test_in_json_every_line_is_one_object_whoever_logs_and_tracebacks_stay_inside() -> None:
    """Issue 16: the standard library's loggers (uvicorn, asyncio, the driver) and an uncaught
    exception are JSON lines too, a traceback one field of its line (a child process, so the
    handlers and the exception hook it installs end with it)."""
    script = """
import logging, structlog
from complaintcore.infra.log_config import configure_logging
configure_logging("json", "info")
structlog.get_logger("complaintcore").info("from structlog", phone="13800138000")
try:
    raise ConnectionRefusedError("the database went away")
except ConnectionRefusedError:
    logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
try:
    raise ValueError("duplicate key (id_number)=(110101199003071234) for 张三")
except ValueError:
    structlog.get_logger("complaintcore").exception("command failed")
logging.getLogger("asyncio").error("Task exception was never retrieved")
raise RuntimeError("nobody caught this")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )

    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["event"] for line in lines] == [
        "from structlog",
        "Exception in ASGI application",
        "command failed",
        "Task exception was never retrieved",
        "uncaught exception",
    ]
    # every line names its logger, structlog's as the standard library's (docs/deployment.md)
    assert [line.get("logger") for line in lines] == [
        "complaintcore",
        "uvicorn.error",
        "complaintcore",
        "asyncio",
        "complaintcore",
    ]
    assert lines[0]["phone"] == "[redacted]"
    assert "builtins.ConnectionRefusedError" in lines[1]["exception"]
    assert lines[1]["logger"] == "uvicorn.error" and lines[1]["level"] == "error"
    assert "builtins.ValueError" in lines[2]["exception"] and "<string>" in lines[2]["exception"]
    assert "builtins.RuntimeError" in lines[4]["exception"]
    # an exception's message may quote personal data: only its type and frames are logged
    for message in ("the database went away", "110101199003071234", "张三", "nobody caught"):
        assert message not in result.stderr
    assert result.returncode == 1
