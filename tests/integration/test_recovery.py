"""Faults and time on the real stack: kill -9 mid-stream loses and duplicates nothing; quiet
runs are abandoned by the sweep and completed by a late terminal event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from neo4j import Driver

from lineage_stream.cli import spark_key
from tests.fleet import fleet_event, spark_fleet
from tests.harness import (
    WorkerProcess,
    clear_graph,
    drain,
    produce,
    run_count,
    snapshot,
    uncommitted,
    unique,
    wait_until,
)
from tests.integration.test_worker import create_topic, worker_env

pytestmark = pytest.mark.integration


def test_kill_9_mid_stream_gives_the_same_graph_as_a_clean_run(
    kafka_bootstrap: str, neo4j_uri: str, neo4j_driver: Driver, tmp_path: Path
) -> None:
    messages = spark_fleet(applications=80, seed=11)
    runs = len({orjson.loads(value)["run"]["runId"] for _, value in messages})
    topic = unique("fleet")
    create_topic(kafka_bootstrap, topic, partitions=4)
    produce(kafka_bootstrap, topic, messages, compression="zstd")
    # Short sessions: the group hands a killed worker's partitions over in seconds.
    small_batches = {"LINEAGE_BATCH_SIZE": "40", "LINEAGE_KAFKA_SESSION_TIMEOUT_S": "6"}

    clear_graph(neo4j_driver)
    env = worker_env(kafka_bootstrap, neo4j_uri, topic, **small_batches)
    for attempt in range(3):
        worker = WorkerProcess(env, tmp_path / "crashing.log").start()
        floor = (attempt + 1) * runs // 5
        wait_until(
            lambda floor=floor, worker=worker: (
                worker.assert_alive() or run_count(neo4j_driver) >= floor
            ),
            timeout=120,
            what=f"at least {floor} runs before kill -9 number {attempt + 1}",
        )
        worker.kill()
    worker = WorkerProcess(env, tmp_path / "crashing.log").start()
    try:
        drain(worker, kafka_bootstrap, topic)
    finally:
        assert worker.stop() == 0
    after_crashes = snapshot(neo4j_driver)

    clear_graph(neo4j_driver)
    clean_env = worker_env(kafka_bootstrap, neo4j_uri, topic, **small_batches)
    worker = WorkerProcess(clean_env, tmp_path / "clean.log").start()
    try:
        drain(worker, kafka_bootstrap, topic)
    finally:
        assert worker.stop() == 0
    clean = snapshot(neo4j_driver)

    assert run_count(neo4j_driver) == runs
    assert after_crashes == clean, after_crashes.diff(clean)
    failed = run_count(neo4j_driver, "p.state = 'FAIL'")
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (app:Process) WHERE app.failedChildRuns IS NOT NULL "
        "RETURN sum(app.failedChildRuns) AS n"
    )
    assert failed > 0
    assert records[0]["n"] == failed


def test_quiet_runs_are_abandoned_and_a_late_terminal_event_completes_them(
    kafka_bootstrap: str, neo4j_uri: str, empty_graph: Driver, tmp_path: Path
) -> None:
    topic = unique("quiet")
    create_topic(kafka_bootstrap, topic, partitions=2)
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    batch_run, streaming_run = str(uuid.uuid4()), str(uuid.uuid4())
    batch_start = fleet_event("START", batch_run, "nightly", long_ago)
    streaming_start = fleet_event(
        "START", streaming_run, "stream", long_ago, processing_type="STREAMING"
    )
    produce(
        kafka_bootstrap,
        topic,
        [(spark_key(e), orjson.dumps(e)) for e in (batch_start, streaming_start)],
    )

    env = worker_env(kafka_bootstrap, neo4j_uri, topic, LINEAGE_RUN_TIMEOUT_S="4")
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:

        def state_of(run_id: str) -> str | None:
            worker.assert_alive()
            records, _, _ = empty_graph.execute_query(
                "MATCH (p:Process {runId: $run}) RETURN p.state AS state", run=run_id
            )
            return records[0]["state"] if records else None

        def abandoned_at(run_id: str) -> datetime | None:
            records, _, _ = empty_graph.execute_query(
                "MATCH (p:Process {runId: $run}) RETURN p.abandonedAt AS at", run=run_id
            )
            return None if records[0]["at"] is None else records[0]["at"].to_native()

        wait_until(lambda: state_of(batch_run) == "ABANDONED", timeout=60, what="ABANDONED")
        assert abandoned_at(batch_run) == long_ago + timedelta(seconds=4)
        assert state_of(streaming_run) == "RUNNING"
        jobs, _, _ = empty_graph.execute_query(
            "MATCH (j:Job {name: 'nightly'}) RETURN j.lastRunState AS state"
        )
        assert jobs[0]["state"] == "ABANDONED"

        complete = fleet_event("COMPLETE", batch_run, "nightly", long_ago + timedelta(minutes=1))
        produce(kafka_bootstrap, topic, [(spark_key(complete), orjson.dumps(complete))])
        wait_until(lambda: state_of(batch_run) == "COMPLETE", timeout=60, what="COMPLETE")
        assert abandoned_at(batch_run) is None
        records, _, _ = empty_graph.execute_query(
            "MATCH (p:Process {runId: $run}) RETURN p.durationMs AS ms", run=batch_run
        )
        assert records[0]["ms"] == 60_000
    finally:
        assert worker.stop() == 0


def test_transaction_markers_between_offsets_do_not_stall_commits(
    kafka_bootstrap: str, neo4j_uri: str, empty_graph: Driver, tmp_path: Path
) -> None:
    topic = unique("transactional")
    create_topic(kafka_bootstrap, topic, partitions=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": unique("tx")})
    producer.init_transactions(30)
    started = datetime.now(UTC) - timedelta(minutes=1)
    run_ids = [str(uuid.uuid4()) for _ in range(3)]
    for run_id in run_ids:
        # Each commit leaves a marker at an offset no consumer ever sees.
        producer.begin_transaction()
        for event_type in ("START", "COMPLETE"):
            event = fleet_event(event_type, run_id, f"tx_{run_id[:8]}", started)
            producer.produce(topic, orjson.dumps(event), spark_key(event))
        producer.commit_transaction(30)

    env = worker_env(kafka_bootstrap, neo4j_uri, topic)
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    group = env["LINEAGE_CONSUMER_GROUP"]
    try:
        # The last marker follows the last event, so no consumer reaches the end offset: the
        # group stops one short of it, past the two markers between the events.
        wait_until(
            lambda: worker.assert_alive() or uncommitted(kafka_bootstrap, group, topic) == {0: 1},
            timeout=90,
            what="commits past the transaction markers",
        )
    finally:
        assert worker.stop() == 0
    assert run_count(empty_graph, "p.state = 'COMPLETE'") == len(run_ids)
