"""Time on the real stack: quiet runs are abandoned by the sweep and completed by a late
terminal event."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from neo4j import Driver

from lineage_stream.cli import spark_key
from tests.harness import (
    WorkerProcess,
    produce,
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
