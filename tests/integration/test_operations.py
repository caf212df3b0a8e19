"""The worker's operations endpoints on the real stack: exact metric values after a known
ingestion, liveness, and readiness that follows Neo4j going away and coming back."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from neo4j import Driver

from lineage_stream.cli import spark_key
from tests.builders import run_event
from tests.harness import (
    Samples,
    WorkerProcess,
    by_label,
    clear_graph,
    free_port,
    get,
    produce,
    scrape,
    unique,
    value,
    wait_until,
)
from tests.integration.test_worker import DATAPROC, bad_inputs, create_topic, worker_env

pytestmark = pytest.mark.integration

PARTITIONS = 3


@dataclass
class RunningWorker:
    base: str
    topic: str
    worker: WorkerProcess


@pytest.fixture(scope="module")
def running(
    kafka_bootstrap: str, neo4j_uri: str, neo4j_driver: Driver, tmp_path_factory: Any
) -> Iterator[RunningWorker]:
    """Dataproc events (two duplicated), bad inputs, a quiet run from 2024 that gets
    abandoned, and a streaming run that stays open."""
    clear_graph(neo4j_driver)
    topic = unique("ops")
    create_topic(kafka_bootstrap, topic, partitions=PARTITIONS)
    events = [(DATAPROC / f"{n}.json").read_bytes() for n in (*range(1, 17), 2, 3)]
    quiet = run_event("START", run_id=str(uuid.uuid4()), job=("ops", "quiet"))
    streaming = run_event(
        "START",
        run_id=str(uuid.uuid4()),
        job=("ops", "stream"),
        at=datetime.now(UTC).isoformat(),
        processing_type="STREAMING",
    )
    good = [orjson.dumps(doc) for doc in (quiet, streaming)] + events
    messages = [(spark_key(orjson.loads(raw)), raw) for raw in good]
    messages += [(None, raw) for raw, _ in bad_inputs().values()]
    produce(kafka_bootstrap, topic, messages)

    port = free_port()
    env = worker_env(
        kafka_bootstrap,
        neo4j_uri,
        topic,
        LINEAGE_METRICS_PORT=str(port),
        LINEAGE_METRICS_HOST="127.0.0.1",
        LINEAGE_RUN_TIMEOUT_S="4",
    )
    log = tmp_path_factory.mktemp("ops") / "worker.log"
    worker = WorkerProcess(env, log).start()
    try:
        yield RunningWorker(f"http://127.0.0.1:{port}", topic, worker)
    finally:
        assert worker.stop() == 0


def test_metrics_count_exactly_what_was_ingested(running: RunningWorker) -> None:
    def settled() -> Samples | None:
        running.worker.assert_alive()
        samples = scrape(running.base)
        consumed = sum(
            by_label(samples, "lineage_stream_events_consumed_total", "event_type").values()
        )
        dead = sum(by_label(samples, "lineage_stream_dlq_events_total", "reason").values())
        abandoned = value(samples, "lineage_stream_runs_abandoned_total")
        return samples if (consumed, dead, abandoned) == (20, 6, 1) else None

    samples = wait_until(settled, timeout=90, what="20 events, 6 dead letters, 1 abandoned run")
    # Dataproc: 5 START, 4 RUNNING, 7 COMPLETE, plus a duplicated START and COMPLETE; the
    # quiet and the streaming run add a START each.
    assert by_label(samples, "lineage_stream_events_consumed_total", "event_type") == {
        "START": 8,
        "RUNNING": 4,
        "COMPLETE": 8,
    }
    assert by_label(samples, "lineage_stream_dlq_events_total", "reason") == {
        "not_json": 2,
        "invalid_event": 2,
        "unsupported": 1,
        "too_large": 1,
    }
    # Seven Dataproc runs finished (duplicates of a finished run do not count again).
    assert by_label(samples, "lineage_stream_runs_finished_total", "state") == {"COMPLETE": 7}
    assert value(samples, "lineage_stream_batch_size_events_sum") == 26
    assert value(samples, "lineage_stream_neo4j_write_duration_seconds_count") >= 1
    assert value(samples, "lineage_stream_neo4j_retries_total") == 0
    assert value(samples, "lineage_stream_last_write_timestamp_seconds") > 0


def test_open_runs_and_lag_settle_to_the_truth(running: RunningWorker) -> None:
    def settled() -> Samples | None:
        samples = scrape(running.base)
        lag = by_label(samples, "lineage_stream_consumer_lag_messages", "partition")
        open_runs = by_label(samples, "lineage_stream_open_runs", "partition")
        done = len(lag) == PARTITIONS and not any(lag.values()) and sum(open_runs.values()) == 1
        return samples if done else None

    # Only the streaming run is open; every partition's offsets are committed to the end.
    samples = wait_until(settled, timeout=60, what="zero lag and one open run")
    lag_topics = {
        dict(labels)["topic"]
        for (name, labels) in samples
        if name == "lineage_stream_consumer_lag_messages"
    }
    assert lag_topics == {running.topic}


def test_healthz_answers_while_the_worker_runs(running: RunningWorker) -> None:
    assert get(f"{running.base}/healthz") == (200, "ok\n")


def test_readyz_follows_neo4j(running: RunningWorker, stack: Any) -> None:
    module = sys.modules["lineage_stack"]
    wait_until(
        lambda: get(f"{running.base}/readyz")[0] == 200, timeout=60, what="/readyz to be ready"
    )
    assert module.stop(stack, "neo4j")
    try:

        def not_ready() -> str | None:
            status, body = get(f"{running.base}/readyz")
            return body if status == 503 else None

        body = wait_until(not_ready, timeout=60, what="/readyz to report Neo4j down")
        assert "Neo4j does not answer" in body
        assert "partitions" not in body
        assert get(f"{running.base}/healthz")[0] == 200
    finally:
        module.up(stack, ["neo4j"])
    wait_until(
        lambda: get(f"{running.base}/readyz") == (200, "ready\n"),
        timeout=60,
        what="/readyz to be ready again after Neo4j restarted",
    )
    running.worker.assert_alive()
