"""Log configuration: JSON lines with context fields, text as Faust writes it, secrets blanked."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest

from lineage_stream.errors import ConfigurationError
from lineage_stream.kafka_admin import prepare_topics
from lineage_stream.logs import REDACTED, RedactSecrets, configured_secrets, logging_config
from lineage_stream.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def emit(settings: Settings, log: Any) -> str:
    """Configure logging as the worker does, with the handler writing to a buffer."""
    config = logging_config(settings)
    logging.config.dictConfig(config)
    buffer = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    log(logging.getLogger("lineage_stream.test"))
    return buffer.getvalue()


def test_json_lines_carry_time_level_logger_message_and_context(restore_logging: None) -> None:
    out = emit(
        Settings(log_format="json"),
        lambda log: log.warning(
            "dead-lettered %s[%d]@%d", "t", 2, 41, extra={"partition": 2, "offset": 41}
        ),
    )
    [line] = out.splitlines()
    record = json.loads(line)
    assert record["level"] == "WARNING"
    assert record["logger"] == "lineage_stream.test"
    assert record["message"] == "dead-lettered t[2]@41"
    assert (record["partition"], record["offset"]) == (2, 41)
    assert record["time"].endswith("+00:00")


def test_json_tracebacks_stay_on_one_line(restore_logging: None) -> None:
    def fail(log: logging.Logger) -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("batch failed")

    [line] = emit(Settings(log_format="json"), fail).splitlines()
    assert "ValueError: boom" in json.loads(line)["exc_info"]


def test_text_is_fausts_format(restore_logging: None) -> None:
    out = emit(Settings(), lambda log: log.info("hello %s", "there"))
    assert out.startswith("[")
    assert "[INFO] hello there" in out


def test_debug_level_is_passed_on(restore_logging: None) -> None:
    out = emit(Settings(log_format="json", log_level="debug"), lambda log: log.debug("fine"))
    assert json.loads(out)["level"] == "DEBUG"


def test_configured_passwords_are_blanked_in_messages_and_tracebacks(
    restore_logging: None,
) -> None:
    kafka_password = "kafka'pw\u00e9"
    settings = Settings(
        log_format="json",
        log_level="debug",
        neo4j_password="graph-pw-1",
        kafka_sasl_password=kafka_password,
    )

    def leak(log: logging.Logger) -> None:
        # As aiokafka's debug line shows a SASL/PLAIN request: a bytes repr.
        log.debug("request %s", b"\x00lineage\x00" + kafka_password.encode())
        log.warning("login as neo4j/%s", "graph-pw-1")
        try:
            raise RuntimeError("refused graph-pw-1")
        except RuntimeError:
            log.exception("failed")

    records = [json.loads(line) for line in emit(settings, leak).splitlines()]
    texts = [record["message"] + record.get("exc_info", "") for record in records]
    leaked = ("graph-pw-1", kafka_password, repr(kafka_password.encode())[2:-1])
    assert not [text for text in texts if any(secret in text for secret in leaked)]
    assert [REDACTED in r["message"] for r in records] == [True, True, False]
    assert REDACTED in records[2]["exc_info"]
    assert "RuntimeError" in records[2]["exc_info"]


def test_the_public_default_password_is_not_treated_as_a_secret() -> None:
    assert configured_secrets(Settings()) == []
    assert configured_secrets(Settings(neo4j_password="s3cret")) == ["s3cret"]


def test_a_malformed_log_call_still_reaches_the_handler() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d", ("not a number",), None)
    assert RedactSecrets(["pw"]).filter(record)


def test_librdkafka_lines_go_through_python_logging_not_stderr(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Written straight to stderr, they broke JSON logs and ignored the configured level."""
    nobody_listens = Settings(kafka_bootstrap_servers="127.0.0.1:1")
    with caplog.at_level(logging.INFO), pytest.raises(ConfigurationError, match="did not answer"):
        prepare_topics(nobody_listens, timeout_s=1.0)
    refusals = [r for r in caplog.records if r.name == "librdkafka"]
    assert refusals, "librdkafka logged nothing about the refused connection"
    assert all("Connection refused" in r.getMessage() for r in refusals)
    assert "rdkafka" not in capfd.readouterr().err
