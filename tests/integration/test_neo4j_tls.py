"""Neo4j over TLS on the local stack, whose Bolt connector accepts TLS with a self-signed
certificate as well as plain connections: `bolt+ssc://` (encrypted, certificate not verified)
carries the worker's writes and the CLI's queries; `bolt+s://` (verified) is refused with a
clear error, and accepted once the certificate is trusted through SSL_CERT_FILE."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from neo4j import Driver

from lineage_stream.cli import spark_key
from tests.builders import run_event
from tests.harness import WorkerProcess, produce, refused_worker, unique, wait_for_run
from tests.integration.test_worker import create_topic, worker_env

pytestmark = pytest.mark.integration

JOB = ("tls", "nightly")


def certificate(stack: Any) -> Path:
    path = Path(stack.root) / "certificates" / "bolt" / "public.crt"
    if not path.exists():
        pytest.fail(
            f"no Bolt certificate at {path}: the stack predates TLS; restart it "
            "(make stack-down stack-up)",
            pytrace=False,
        )
    return path


def verified_uri(stack: Any) -> str:
    return f"bolt+s://127.0.0.1:{stack.bolt_port}"


def lineage_stream(*args: str, uri: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lineage_stream", *args],
        env={**os.environ, "LINEAGE_NEO4J_URI": uri, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_worker_and_cli_use_tls_with_a_self_signed_certificate(
    stack: Any, kafka_bootstrap: str, empty_graph: Driver, tmp_path: Path
) -> None:
    certificate(stack)
    topic = unique("tls")
    create_topic(kafka_bootstrap, topic, partitions=1)
    run_id = str(uuid.uuid4())
    events = [
        orjson.dumps(run_event(kind, run_id=run_id, job=JOB, at=at))
        for kind, at in (("START", "2024-01-01T00:00:00Z"), ("COMPLETE", "2024-01-01T00:05:00Z"))
    ]
    produce(kafka_bootstrap, topic, [(spark_key(orjson.loads(raw)), raw) for raw in events])
    env = worker_env(kafka_bootstrap, stack.bolt_tls_uri, topic, LINEAGE_METRICS_PORT="0")
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        wait_for_run(worker, empty_graph, run_id, "COMPLETE", "the run, written over bolt+ssc://")
    finally:
        assert worker.stop() == 0, worker.log_tail()

    done = lineage_stream("runs", *JOB, "--json", uri=stack.bolt_tls_uri)
    assert done.returncode == 0, done.stderr
    assert [(run["runId"], run["state"]) for run in orjson.loads(done.stdout)] == [
        (run_id, "COMPLETE")
    ]


def test_worker_refuses_an_unverified_certificate_clearly(stack: Any, kafka_bootstrap: str) -> None:
    certificate(stack)
    env = worker_env(kafka_bootstrap, verified_uri(stack), unique("tls"), LINEAGE_METRICS_PORT="0")
    message = refused_worker(env)
    assert "its TLS certificate did not verify (self-signed certificate)" in message
    assert "bolt+ssc://" in message


def test_cli_refuses_an_unverified_certificate_clearly(stack: Any) -> None:
    certificate(stack)
    done = lineage_stream("runs", *JOB, uri=verified_uri(stack))
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "its TLS certificate did not verify (self-signed certificate)" in message
    assert "Traceback" not in done.stderr


def test_cli_verifies_the_certificate_once_its_ca_is_trusted(
    stack: Any, empty_graph: Driver
) -> None:
    empty_graph.execute_query("CREATE (:Job {namespace: $ns, name: $name})", ns=JOB[0], name=JOB[1])
    done = lineage_stream(
        "runs", *JOB, "--json", uri=verified_uri(stack), SSL_CERT_FILE=str(certificate(stack))
    )
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == []
