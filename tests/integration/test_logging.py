"""The worker's JSON logs on the real stack: every line is a JSON object, a dead letter's line
names its partition and offset, and neither password reaches the output, at debug level too.

SASL/PLAIN is the hard case: aiokafka's debug lines show the authentication request, password
included, so the worker's redaction filter has to catch it. The Neo4j password is random and
distinctive (the stack's default is the project's name): a Neo4j user is made for this test.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from neo4j import Driver

from lineage_stream.cli import spark_key
from lineage_stream.logs import REDACTED
from tests.builders import run_event
from tests.harness import WorkerProcess, consume_all, produce, unique, wait_for_run
from tests.integration.test_sasl import sasl_bootstrap
from tests.integration.test_worker import create_topic, worker_env

pytestmark = pytest.mark.integration


def password() -> str:
    return f"pw-{secrets.token_hex(12)}"


@pytest.fixture
def neo4j_user(neo4j_driver: Driver) -> Iterator[tuple[str, str]]:
    user, secret = f"logs_{uuid.uuid4().hex[:10]}", password()
    neo4j_driver.execute_query(
        "CREATE USER $user SET PASSWORD $secret CHANGE NOT REQUIRED",
        user=user,
        secret=secret,
        database_="system",
    )
    yield user, secret
    neo4j_driver.execute_query("DROP USER $user", user=user, database_="system")


def test_json_logs_carry_context_and_no_secrets(
    stack: Any,
    kafka_bootstrap: str,
    neo4j_uri: str,
    empty_graph: Driver,
    neo4j_user: tuple[str, str],
    tmp_path: Path,
) -> None:
    topic = unique("logs")
    create_topic(kafka_bootstrap, topic, partitions=1)
    run_id = str(uuid.uuid4())
    good = [
        orjson.dumps(run_event(kind, run_id=run_id, job=("logs", "job"), at=at))
        for kind, at in (("START", "2024-01-01T00:00:00Z"), ("COMPLETE", "2024-01-01T00:01:00Z"))
    ]
    produce(kafka_bootstrap, topic, [(spark_key(orjson.loads(raw)), raw) for raw in good])
    produce(kafka_bootstrap, topic, [(None, b"{not json")])
    bad_offset = len(good)  # one partition: the bad message follows the good ones

    kafka_secret = stack.sasl_password
    graph_user, graph_secret = neo4j_user
    env = worker_env(
        sasl_bootstrap(stack),
        neo4j_uri,
        topic,
        LINEAGE_LOG_FORMAT="json",
        LINEAGE_LOG_LEVEL="debug",
        LINEAGE_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        LINEAGE_KAFKA_SASL_MECHANISM="PLAIN",
        LINEAGE_KAFKA_SASL_USERNAME="lineage",
        LINEAGE_KAFKA_SASL_PASSWORD=kafka_secret,
        LINEAGE_NEO4J_USER=graph_user,
        LINEAGE_NEO4J_PASSWORD=graph_secret,
        LINEAGE_METRICS_PORT="0",
    )
    log_path = tmp_path / "worker.log"
    worker = WorkerProcess(env, log_path).start()
    try:
        wait_for_run(
            worker, empty_graph, run_id, "COMPLETE", "the run, written with the test's Neo4j user"
        )
        dead = consume_all(kafka_bootstrap, f"{topic}.dlq", expected=1)
        assert [m.headers["lineage.source.offset"] for m in dead] == [str(bad_offset)]
    finally:
        assert worker.stop() == 0, worker.log_tail()

    output = log_path.read_text()
    lines = [line for line in output.splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
    assert all(isinstance(record, dict) for record in records)
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    loggers = {record["logger"] for record in records}
    assert {"lineage_stream.cli", "lineage_stream.pipeline", "lineage_stream.app"} <= loggers
    assert any(logger.startswith(("faust", "mode", "aiokafka")) for logger in loggers)
    dead_lettered = [r for r in records if r["message"].startswith("dead-lettered")]
    assert [(r["topic"], r["partition"], r["offset"], r["reason"]) for r in dead_lettered] == [
        (topic, 0, bad_offset, "not_json")
    ]
    commits = [
        r["offset"]
        for r in records
        if r["message"].startswith("committed") and r.get("topic") == topic
    ]
    assert commits
    assert commits[-1] == bad_offset + 1
    assert kafka_secret not in output
    plain_requests = [r for r in records if "SaslAuthenticateRequest" in r["message"]]
    assert plain_requests
    assert all(REDACTED in r["message"] for r in plain_requests)
    assert graph_secret not in output


def test_warning_level_logs_only_warnings_as_json(
    kafka_bootstrap: str, neo4j_uri: str, empty_graph: Driver, tmp_path: Path
) -> None:
    """At WARNING, Faust's start-up spinner would write cursor codes into the log and turn the
    root logger to DEBUG (every library's debug call then builds a record); the worker has it
    off."""
    topic = unique("logs-warning")
    create_topic(kafka_bootstrap, topic, partitions=1)
    run_id = str(uuid.uuid4())
    raw = orjson.dumps(run_event("COMPLETE", run_id=run_id, job=("logs", "quiet")))
    produce(kafka_bootstrap, topic, [(None, b"{not json"), (spark_key(orjson.loads(raw)), raw)])
    env = worker_env(
        kafka_bootstrap,
        neo4j_uri,
        topic,
        LINEAGE_LOG_FORMAT="json",
        LINEAGE_LOG_LEVEL="warning",
        LINEAGE_METRICS_PORT="0",
    )
    log_path = tmp_path / "worker.log"
    worker = WorkerProcess(env, log_path).start()
    try:
        wait_for_run(worker, empty_graph, run_id, "COMPLETE", "the run after the bad message")
    finally:
        assert worker.stop() == 0, worker.log_tail()

    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    try:
        records = [json.loads(line) for line in lines]
    except json.JSONDecodeError as exc:
        pytest.fail(f"not JSON lines ({exc}): {lines[:3]!r}")
    assert any(r["message"].startswith("dead-lettered") for r in records)
    assert {r["level"] for r in records} <= {"WARNING", "ERROR", "CRITICAL"}
