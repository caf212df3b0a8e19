"""Faults and time on the real stack: kill -9 mid-stream loses and duplicates nothing; quiet
runs are abandoned by the sweep and completed by a late terminal event."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer
from neo4j import Driver

from lineage_stream.cli import spark_key
from tests.harness import (
    WorkerProcess,
    clear_graph,
    produce,
    snapshot,
    uncommitted,
    unique,
    wait_until,
)
from tests.integration.test_worker import create_topic, worker_env

pytestmark = pytest.mark.integration


def _event(
    event_type: str,
    run_id: str,
    job: str,
    when: datetime,
    *,
    parent: tuple[str, str] | None = None,
    inputs: list[str] = (),  # type: ignore[assignment]
    outputs: list[str] = (),  # type: ignore[assignment]
    processing_type: str = "BATCH",
) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if parent:
        facets["parent"] = {
            "run": {"runId": parent[0]},
            "job": {"namespace": "fleet", "name": parent[1]},
        }
    if event_type == "FAIL":
        facets["spark.exception"] = {"message": f"{job} failed", "stackTrace": "at x"}

    def dataset(name: str) -> dict[str, Any]:
        return {
            "namespace": "s3a://lake",
            "name": f"/warehouse/{name}",
            "facets": {"schema": {"fields": [{"name": "id", "type": "long"}]}},
        }

    outputs_with_lineage = []
    for name in outputs:
        out = dataset(name)
        if inputs:
            out["facets"]["columnLineage"] = {
                "fields": {
                    "id": {
                        "inputFields": [
                            {"namespace": "s3a://lake", "name": f"/warehouse/{i}", "field": "id"}
                            for i in inputs
                        ]
                    }
                }
            }
        outputs_with_lineage.append(out)
    return {
        "eventType": event_type,
        "eventTime": when.isoformat(),
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/spark",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": facets},
        "job": {
            "namespace": "fleet",
            "name": job,
            "facets": {
                "jobType": {
                    "jobType": "SQL_JOB" if parent else "APPLICATION",
                    "integration": "SPARK",
                    "processingType": processing_type,
                }
            },
        },
        "inputs": [dataset(name) for name in inputs],
        "outputs": outputs_with_lineage,
    }


def spark_fleet(applications: int, seed: int) -> list[tuple[bytes | None, bytes]]:
    """Applications with 1-4 SQL children each: START/RUNNING/COMPLETE or FAIL, Spark-keyed."""
    rng = random.Random(seed)
    base = datetime.now(UTC) - timedelta(minutes=30)
    tables = [f"t{n}" for n in range(25)]
    messages = []
    for app_number in range(applications):
        app_run, app_job = str(uuid.UUID(int=rng.getrandbits(128))), f"app_{app_number}"
        start = base + timedelta(seconds=app_number)
        events = [_event("START", app_run, app_job, start)]
        for child_number in range(rng.randint(1, 4)):
            child_run = str(uuid.UUID(int=rng.getrandbits(128)))
            job = f"{app_job}.query_{child_number}"
            reads, writes = rng.sample(tables, rng.randint(1, 3)), rng.sample(tables, 1)
            t0 = start + timedelta(milliseconds=100 * (child_number + 1))
            ending = "FAIL" if rng.random() < 0.15 else "COMPLETE"
            events += [
                _event("START", child_run, job, t0, parent=(app_run, app_job), inputs=reads),
                _event(
                    "RUNNING",
                    child_run,
                    job,
                    t0 + timedelta(milliseconds=20),
                    parent=(app_run, app_job),
                    outputs=writes,
                ),
                _event(
                    ending,
                    child_run,
                    job,
                    t0 + timedelta(milliseconds=50),
                    parent=(app_run, app_job),
                    inputs=reads,
                    outputs=writes,
                ),
            ]
        events.append(_event("COMPLETE", app_run, app_job, start + timedelta(seconds=1)))
        rng.shuffle(events)
        messages += [(spark_key(e), orjson.dumps(e)) for e in events]
    return messages


def run_count(driver: Driver, where: str = "true") -> int:
    records, _, _ = driver.execute_query(f"MATCH (p:Process) WHERE {where} RETURN count(p) AS n")
    return int(records[0]["n"])


def drain(worker: WorkerProcess, bootstrap: str, topic: str, timeout: float = 180) -> None:
    """Wait until the worker's group has committed every message of the topic.

    Counting finished runs is not enough: a run's START may still be on its way after its
    COMPLETE, and the committed offsets are what a restarted worker resumes from.
    """
    group = worker.env["LINEAGE_CONSUMER_GROUP"]

    def everything_committed() -> bool:
        worker.assert_alive()
        return not any(uncommitted(bootstrap, group, topic).values())

    wait_until(
        everything_committed, timeout=timeout, what=f"group {group} to commit all of {topic}"
    )


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
    batch_start = _event("START", batch_run, "nightly", long_ago)
    streaming_start = _event(
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

        wait_until(lambda: state_of(batch_run) == "ABANDONED", timeout=60, what="ABANDONED")
        assert state_of(streaming_run) == "RUNNING"
        jobs, _, _ = empty_graph.execute_query(
            "MATCH (j:Job {name: 'nightly'}) RETURN j.lastRunState AS state"
        )
        assert jobs[0]["state"] == "ABANDONED"

        complete = _event("COMPLETE", batch_run, "nightly", long_ago + timedelta(minutes=1))
        produce(kafka_bootstrap, topic, [(spark_key(complete), orjson.dumps(complete))])
        wait_until(lambda: state_of(batch_run) == "COMPLETE", timeout=60, what="COMPLETE")
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
            event = _event(event_type, run_id, f"tx_{run_id[:8]}", started)
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
