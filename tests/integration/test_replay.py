"""`lineage-stream replay` on the real Neo4j: the bundled demo events make the same graph the
worker makes from Kafka, whatever the batch size; bad lines are reported by number."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from neo4j import Driver

from lineage_stream.cli import demo_events, spark_key
from tests.harness import (
    GraphSnapshot,
    WorkerProcess,
    by_label,
    clear_graph,
    free_port,
    produce,
    scrape,
    snapshot,
    wait_until,
)
from tests.integration.test_worker import create_topic, unique, worker_env

pytestmark = pytest.mark.integration

# The demo has a run with no terminal event from 2024: a worker would abandon it, replay never.
NEVER_STALE_S = str(10**9)


def demo_lines() -> list[bytes]:
    return [
        line for path in demo_events() for line in path.read_bytes().splitlines() if line.strip()
    ]


def replay(
    path: Path, neo4j_uri: str, batch_size: int, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LINEAGE_NEO4J_URI": neo4j_uri,
        "LINEAGE_BATCH_SIZE": str(batch_size),
    }
    return subprocess.run(
        [sys.executable, "-m", "lineage_stream", "replay", "-" if stdin else str(path)],
        env=env,
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def worker_graph(
    kafka_bootstrap: str, neo4j_uri: str, neo4j_driver: Driver, tmp_path_factory: Any
) -> GraphSnapshot:
    """What the worker writes from the demo events published as openlineage-spark keys them."""
    clear_graph(neo4j_driver)
    lines = demo_lines()
    topic = unique("demo")
    create_topic(kafka_bootstrap, topic, partitions=3)
    produce(kafka_bootstrap, topic, [(spark_key(orjson.loads(raw)), raw) for raw in lines])
    port = free_port()
    env = worker_env(
        kafka_bootstrap,
        neo4j_uri,
        topic,
        LINEAGE_METRICS_PORT=str(port),
        LINEAGE_METRICS_HOST="127.0.0.1",
        LINEAGE_RUN_TIMEOUT_S=NEVER_STALE_S,
    )
    worker = WorkerProcess(env, tmp_path_factory.mktemp("demo") / "worker.log").start()

    def written() -> bool:
        worker.assert_alive()
        samples = scrape(f"http://127.0.0.1:{port}")
        consumed = by_label(samples, "lineage_stream_events_consumed_total", "event_type")
        return sum(consumed.values()) == len(lines)

    try:
        wait_until(written, timeout=90, what=f"the worker to write all {len(lines)} demo events")
    finally:
        assert worker.stop() == 0
    return snapshot(neo4j_driver)


@pytest.mark.parametrize("batch_size", [500, 1])
def test_replay_of_the_demo_builds_the_graph_the_worker_builds(
    worker_graph: GraphSnapshot,
    neo4j_uri: str,
    empty_graph: Driver,
    tmp_path: Path,
    batch_size: int,
) -> None:
    path = tmp_path / "demo.ndjson"
    path.write_bytes(b"\n".join(demo_lines()) + b"\n")
    result = replay(path, neo4j_uri, batch_size)
    assert result.returncode == 0, result.stderr
    replayed = snapshot(empty_graph)
    assert replayed == worker_graph, replayed.diff(worker_graph)
    assert len(worker_graph.nodes) > 0
    assert "replayed 31 events of 14 runs" in result.stderr


def test_replay_again_changes_nothing(
    worker_graph: GraphSnapshot, neo4j_uri: str, empty_graph: Driver, tmp_path: Path
) -> None:
    path = tmp_path / "demo.ndjson"
    path.write_bytes(b"\n".join(demo_lines()) + b"\n")
    assert replay(path, neo4j_uri, 7).returncode == 0
    assert replay(path, neo4j_uri, 7).returncode == 0
    replayed = snapshot(empty_graph)
    assert replayed == worker_graph, replayed.diff(worker_graph)


def test_invalid_lines_are_reported_by_number_and_skipped(
    worker_graph: GraphSnapshot, neo4j_uri: str, empty_graph: Driver
) -> None:
    lines = demo_lines()
    mixed = [b"not json", *lines[:10], b"", b"[1, 2]", *lines[10:], b'{"eventTime": 3}']
    result = replay(Path("-"), neo4j_uri, 4, stdin=b"\n".join(mixed) + b"\n")
    assert result.returncode == 0, result.stderr
    reported = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert [line.split(":")[:2] for line in reported] == [
        ["line 1", " not_json"],
        ["line 13", " invalid_event"],
        ["line 35", " invalid_event"],
    ]
    assert "3 invalid lines skipped" in result.stderr
    replayed = snapshot(empty_graph)
    assert replayed == worker_graph, replayed.diff(worker_graph)


def test_a_missing_file_is_a_clear_error(neo4j_uri: str, tmp_path: Path) -> None:
    result = replay(tmp_path / "absent.ndjson", neo4j_uri, 10)
    assert result.returncode == 2
    # The console wraps long paths; compare words.
    assert "absent.ndjson is not a readable file" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
