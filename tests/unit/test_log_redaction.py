import json

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
