"""The worker against the local Kafka's SASL/SCRAM listener: it consumes and dead-letters with
credentials (the password read from a file), and is refused without them or with wrong ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver

from tests.harness import unique
from tests.integration.secured import assert_consumes_and_dead_letters, listening, run_worker
from tests.integration.test_worker import worker_env

pytestmark = pytest.mark.integration


def sasl_bootstrap(stack: Any) -> str:
    return listening(stack.sasl_port, "SASL")


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
    secret = tmp_path / "kafka-password"
    secret.write_text(stack.sasl_password + "\n")
    assert_consumes_and_dead_letters(
        kafka_bootstrap,
        lambda topic: sasl_env(
            stack, neo4j_uri, topic, LINEAGE_KAFKA_SASL_PASSWORD_FILE=str(secret)
        ),
        empty_graph,
        tmp_path / "worker.log",
        over="SASL/SCRAM",
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
