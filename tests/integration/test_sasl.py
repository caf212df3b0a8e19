"""The worker against the local Kafka's SASL/SCRAM listener: it consumes and dead-letters with
credentials (the password read from a file), and is refused without them or with wrong ones."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from neo4j import Driver

from lineage_stream.cli import spark_key
from tests.harness import WorkerProcess, consume_all, produce, unique, wait_until
from tests.integration.test_worker import DATAPROC, EXPECTED_RUNS, create_topic, worker_env

pytestmark = pytest.mark.integration


def sasl_bootstrap(stack: Any) -> str:
    address = stack.sasl_bootstrap
    with socket.socket() as sock:
        sock.settimeout(2)
        if sock.connect_ex(("127.0.0.1", stack.sasl_port)) != 0:
            pytest.fail(
                f"no SASL listener on {address}: the stack predates it; restart it "
                "(make stack-down stack-up)",
                pytrace=False,
            )
    return address  # type: ignore[no-any-return]


def sasl_env(stack: Any, neo4j_uri: str, topic: str, **extra: str) -> dict[str, str]:
    return worker_env(
        sasl_bootstrap(stack),
        neo4j_uri,
        topic,
        LINEAGE_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        LINEAGE_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        LINEAGE_KAFKA_SASL_USERNAME="lineage",
        LINEAGE_METRICS_PORT="0",
        **extra,
    )


def test_worker_with_scram_credentials_consumes_and_dead_letters(
    stack: Any, kafka_bootstrap: str, neo4j_uri: str, empty_graph: Driver, tmp_path: Path
) -> None:
    topic = unique("sasl")
    create_topic(kafka_bootstrap, topic, partitions=2)
    events = [(DATAPROC / f"{n}.json").read_bytes() for n in range(1, 17)]
    produce(kafka_bootstrap, topic, [(spark_key(orjson.loads(raw)), raw) for raw in events])
    produce(kafka_bootstrap, topic, [(None, b"not json")])
    secret = tmp_path / "kafka-password"
    secret.write_text(stack.sasl_password + "\n")
    env = sasl_env(stack, neo4j_uri, topic, LINEAGE_KAFKA_SASL_PASSWORD_FILE=str(secret))
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:

        def finished() -> bool:
            worker.assert_alive()
            records, _, _ = empty_graph.execute_query(
                "MATCH (p:Process {state: 'COMPLETE'}) RETURN count(p) AS n"
            )
            return records[0]["n"] == len(EXPECTED_RUNS)

        wait_until(finished, timeout=90, what="the seven runs, read over SASL/SCRAM")
        # The dead-letter producer authenticates too.
        dead = consume_all(kafka_bootstrap, f"{topic}.dlq", expected=1)
        assert [(m.value, m.headers["lineage.error.reason"]) for m in dead] == [
            (b"not json", "not_json")
        ]
    finally:
        assert worker.stop() == 0


def run_worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lineage_stream", "worker"],
        env={**WorkerProcess(env, Path("/dev/null")).env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_worker_with_a_wrong_password_is_refused(stack: Any, neo4j_uri: str) -> None:
    password = "not-the-Secret-42"
    env = sasl_env(stack, neo4j_uri, unique("sasl"), LINEAGE_KAFKA_SASL_PASSWORD=password)
    result = run_worker(env)
    assert result.returncode == 2
    words = " ".join(result.stderr.split())
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in words
    assert password not in result.stderr + result.stdout


def test_worker_without_credentials_is_refused(stack: Any, neo4j_uri: str) -> None:
    env = worker_env(sasl_bootstrap(stack), neo4j_uri, unique("sasl"), LINEAGE_METRICS_PORT="0")
    result = run_worker(env)
    assert result.returncode == 2
    assert "did not answer" in " ".join(result.stderr.split())
