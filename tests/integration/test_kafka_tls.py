"""The worker against the local Kafka's SSL listener, which requires a client certificate
(mTLS): with the stack's CA and client certificate it consumes and dead-letters over TLS, and
without a client certificate, or trusting another CA, it stops with a message that says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver

from tests.harness import unique
from tests.integration.secured import assert_consumes_and_dead_letters, listening, run_worker
from tests.integration.test_worker import worker_env

pytestmark = pytest.mark.integration


def ssl_bootstrap(stack: Any) -> str:
    return listening(stack.ssl_port, "SSL")


def ssl_env(stack: Any, neo4j_uri: str, topic: str, **extra: str) -> dict[str, str]:
    settings = {
        "LINEAGE_KAFKA_SECURITY_PROTOCOL": "SSL",
        "LINEAGE_KAFKA_SSL_CAFILE": str(stack.ssl_cafile),
        "LINEAGE_METRICS_PORT": "0",
        **extra,
    }
    return worker_env(ssl_bootstrap(stack), neo4j_uri, topic, **settings)


def test_worker_with_a_client_certificate_consumes_and_dead_letters(
    stack: Any, kafka_bootstrap: str, neo4j_uri: str, empty_graph: Driver, tmp_path: Path
) -> None:
    assert_consumes_and_dead_letters(
        kafka_bootstrap,
        lambda topic: ssl_env(
            stack,
            neo4j_uri,
            topic,
            LINEAGE_KAFKA_SSL_CERTFILE=str(stack.ssl_client_certfile),
            LINEAGE_KAFKA_SSL_KEYFILE=str(stack.ssl_client_keyfile),
        ),
        empty_graph,
        tmp_path / "worker.log",
        over="TLS",
    )


def test_worker_without_a_client_certificate_is_refused(stack: Any, neo4j_uri: str) -> None:
    result = run_worker(ssl_env(stack, neo4j_uri, unique("tls")))
    assert result.returncode == 2
    words = " ".join(result.stderr.split())
    assert f"Kafka at {stack.ssl_bootstrap} refused the connection" in words
    assert "bad certificate" in words
    assert "set LINEAGE_KAFKA_SSL_CERTFILE and LINEAGE_KAFKA_SSL_KEYFILE" in words
    assert "Traceback" not in result.stderr


def test_worker_that_trusts_another_ca_refuses_the_broker(stack: Any, neo4j_uri: str) -> None:
    # A CA file without the broker's issuer: the client's own certificate.
    env = ssl_env(
        stack,
        neo4j_uri,
        unique("tls"),
        LINEAGE_KAFKA_SSL_CAFILE=str(stack.ssl_client_certfile),
        LINEAGE_KAFKA_SSL_CERTFILE=str(stack.ssl_client_certfile),
        LINEAGE_KAFKA_SSL_KEYFILE=str(stack.ssl_client_keyfile),
    )
    result = run_worker(env)
    assert result.returncode == 2
    words = " ".join(result.stderr.split())
    assert f"the broker certificate of Kafka at {stack.ssl_bootstrap} cannot be verified" in words
    assert "LINEAGE_KAFKA_SSL_CAFILE must name the CA that signed it" in words
    assert "Traceback" not in result.stderr


def test_worker_whose_key_does_not_match_its_certificate_is_refused(
    stack: Any, neo4j_uri: str
) -> None:
    env = ssl_env(
        stack,
        neo4j_uri,
        unique("tls"),
        LINEAGE_KAFKA_SSL_CERTFILE=str(stack.ssl_client_certfile),
        LINEAGE_KAFKA_SSL_KEYFILE=str(stack.kafka_certificate_dir / "ca.key"),
    )
    result = run_worker(env)
    assert result.returncode == 2
    words = " ".join(result.stderr.split())
    assert "invalid Kafka client settings" in words
    assert "key values mismatch" in words
    assert "Traceback" not in result.stderr
