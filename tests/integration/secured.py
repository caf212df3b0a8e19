"""Shared by the tests of the worker against the local Kafka's secured listeners."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from neo4j import Driver

from lineage_stream.cli import spark_key
from tests.harness import WorkerProcess, consume_all, produce, unique, wait_until
from tests.integration.test_worker import DATAPROC, EXPECTED_RUNS, create_topic


def listening(port: int, what: str) -> str:
    """The listener's address; fails the test when the running stack has no such listener."""
    with socket.socket() as sock:
        sock.settimeout(2)
        if sock.connect_ex(("127.0.0.1", port)) != 0:
            pytest.fail(
                f"no {what} listener on 127.0.0.1:{port}: the stack predates it; restart it "
                "(make stack-down stack-up)",
                pytrace=False,
            )
    return f"127.0.0.1:{port}"


def run_worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A worker run to its end, for the ones that must stop at start-up."""
    return subprocess.run(
        [sys.executable, "-m", "lineage_stream", "worker"],
        env={**WorkerProcess(env, Path("/dev/null")).env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_consumes_and_dead_letters(
    kafka_bootstrap: str,
    env_for: Callable[[str], dict[str, str]],
    graph: Driver,
    log: Path,
    over: str,
) -> None:
    """A real Spark application's runs reach the graph and a bad event the dead-letter topic,
    through a worker whose settings `env_for(topic)` gives (the test reads the topics over the
    plaintext listener)."""
    topic = unique("secured")
    create_topic(kafka_bootstrap, topic, partitions=2)
    events = [(DATAPROC / f"{n}.json").read_bytes() for n in range(1, 17)]
    produce(kafka_bootstrap, topic, [(spark_key(orjson.loads(raw)), raw) for raw in events])
    produce(kafka_bootstrap, topic, [(None, b"not json")])
    worker = WorkerProcess(env_for(topic), log).start()
    try:

        def finished() -> bool:
            worker.assert_alive()
            records, _, _ = graph.execute_query(
                "MATCH (p:Process {state: 'COMPLETE'}) RETURN count(p) AS n"
            )
            return records[0]["n"] == len(EXPECTED_RUNS)

        wait_until(finished, timeout=90, what=f"the seven runs, read over {over}")
        # The dead-letter producer goes through the secured listener as well.
        dead = consume_all(kafka_bootstrap, f"{topic}.dlq", expected=1)
        assert [(m.value, m.headers["lineage.error.reason"]) for m in dead] == [
            (b"not json", "not_json")
        ]
    finally:
        assert worker.stop() == 0
