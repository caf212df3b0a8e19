"""A synthetic Spark fleet for fault tests: applications with SQL-execution children."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from lineage_stream.cli import spark_key


def fleet_event(
    event_type: str,
    run_id: str,
    job: str,
    when: datetime,
    *,
    parent: tuple[str, str] | None = None,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
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


def spark_fleet(
    applications: int, seed: int, hot_table: str | None = None
) -> list[tuple[bytes | None, bytes]]:
    """Applications with 1-4 SQL children each: START/RUNNING/COMPLETE or FAIL, Spark-keyed.

    With `hot_table`, every child run also writes that one table.
    """
    rng = random.Random(seed)
    base = datetime.now(UTC) - timedelta(minutes=30)
    tables = [f"t{n}" for n in range(25)]
    messages = []
    for app_number in range(applications):
        app_run, app_job = str(uuid.UUID(int=rng.getrandbits(128))), f"app_{app_number}"
        start = base + timedelta(seconds=app_number)
        events = [fleet_event("START", app_run, app_job, start)]
        for child_number in range(rng.randint(1, 4)):
            child_run = str(uuid.UUID(int=rng.getrandbits(128)))
            job = f"{app_job}.query_{child_number}"
            reads, writes = rng.sample(tables, rng.randint(1, 3)), rng.sample(tables, 1)
            if hot_table:
                writes.append(hot_table)
            t0 = start + timedelta(milliseconds=100 * (child_number + 1))
            ending = "FAIL" if rng.random() < 0.15 else "COMPLETE"
            events += [
                fleet_event("START", child_run, job, t0, parent=(app_run, app_job), inputs=reads),
                fleet_event(
                    "RUNNING",
                    child_run,
                    job,
                    t0 + timedelta(milliseconds=20),
                    parent=(app_run, app_job),
                    outputs=writes,
                ),
                fleet_event(
                    ending,
                    child_run,
                    job,
                    t0 + timedelta(milliseconds=50),
                    parent=(app_run, app_job),
                    inputs=reads,
                    outputs=writes,
                ),
            ]
        events.append(fleet_event("COMPLETE", app_run, app_job, start + timedelta(seconds=1)))
        rng.shuffle(events)
        messages += [(spark_key(e), orjson.dumps(e)) for e in events]
    return messages
