"""The naive baseline: the consumer most teams write first.

confluent-kafka poll loop, `json.loads`, one Neo4j transaction per event with a MERGE statement
per job, run, dataset, schema field and column-lineage edge, then an offset commit per event.
It writes the same nodes and edges as lineage-stream but fewer properties, and none of the
pairing guards or identity resolution (symlinks, aliases), so ratios against it flatter it.

Run as its own process so the benchmark can measure its CPU and memory:
    python -m bench.naive --bootstrap HOST:PORT --topic T --group G --uri bolt://... --password P
"""

from __future__ import annotations

import argparse
import json
import signal
from typing import Any

from confluent_kafka import Consumer
from neo4j import GraphDatabase, ManagedTransaction

MERGE_JOB_AND_RUN = """
MERGE (j:Job {namespace: $jobNamespace, name: $jobName})
MERGE (p:Process {runId: $runId})
SET p.state = $eventType, p.lastEventAt = datetime($eventTime)
MERGE (j)-[:HAS_RUN]->(p)
"""
MERGE_PARENT = """
MATCH (p:Process {runId: $runId})
MERGE (parent:Process {runId: $parentRunId})
MERGE (p)-[:CHILD_OF]->(parent)
"""
MERGE_INPUT = """
MATCH (p:Process {runId: $runId})
MERGE (d:Dataset {namespace: $namespace, name: $name})
MERGE (d)-[:INPUT_TO]->(p)
"""
MERGE_OUTPUT = """
MATCH (p:Process {runId: $runId})
MERGE (d:Dataset {namespace: $namespace, name: $name})
MERGE (p)-[:OUTPUT_TO]->(d)
"""
MERGE_FIELD = """
MERGE (d:Dataset {namespace: $namespace, name: $name})
MERGE (f:Field {namespace: $namespace, name: $name, field: $field})
MERGE (d)-[:HAS_FIELD]->(f)
"""
MERGE_DERIVATION = """
MERGE (s:Field {namespace: $fromNamespace, name: $fromName, field: $fromField})
MERGE (t:Field {namespace: $namespace, name: $name, field: $field})
MERGE (s)-[:DERIVES {jobNamespace: $jobNamespace, jobName: $jobName}]->(t)
"""


def write_columns(tx: ManagedTransaction, job: dict[str, Any], dataset: dict[str, Any]) -> None:
    key = {"namespace": dataset["namespace"], "name": dataset["name"]}
    facets = dataset.get("facets") or {}
    for column in (facets.get("schema") or {}).get("fields") or []:
        tx.run(MERGE_FIELD, **key, field=column["name"]).consume()
    for field, lineage in ((facets.get("columnLineage") or {}).get("fields") or {}).items():
        for source in lineage.get("inputFields") or []:
            tx.run(
                MERGE_DERIVATION,
                **key,
                field=field,
                fromNamespace=source["namespace"],
                fromName=source["name"],
                fromField=source["field"],
                jobNamespace=job["namespace"],
                jobName=job["name"],
            ).consume()


def write_event(tx: ManagedTransaction, event: dict[str, Any]) -> None:
    run_id = event["run"]["runId"]
    tx.run(
        MERGE_JOB_AND_RUN,
        jobNamespace=event["job"]["namespace"],
        jobName=event["job"]["name"],
        runId=run_id,
        eventType=event.get("eventType", "OTHER"),
        eventTime=event["eventTime"],
    ).consume()
    parent = event["run"].get("facets", {}).get("parent")
    if parent:
        tx.run(MERGE_PARENT, runId=run_id, parentRunId=parent["run"]["runId"]).consume()
    for dataset in event.get("inputs") or []:
        tx.run(
            MERGE_INPUT, runId=run_id, namespace=dataset["namespace"], name=dataset["name"]
        ).consume()
    for dataset in event.get("inputs") or []:
        write_columns(tx, event["job"], dataset)
    for dataset in event.get("outputs") or []:
        tx.run(
            MERGE_OUTPUT, runId=run_id, namespace=dataset["namespace"], name=dataset["name"]
        ).consume()
        write_columns(tx, event["job"], dataset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--uri", required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 32 * 1024 * 1024,
            "max.partition.fetch.bytes": 8 * 1024 * 1024,
        }
    )
    consumer.subscribe([args.topic])
    with (
        GraphDatabase.driver(args.uri, auth=("neo4j", args.password)) as driver,
        driver.session() as session,
    ):
        while not stopping:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            try:
                event = json.loads(message.value())
            except ValueError:
                consumer.commit(message, asynchronous=True)
                continue
            if "run" in event and "job" in event:
                session.execute_write(write_event, event)
            consumer.commit(message, asynchronous=True)
    consumer.close()


if __name__ == "__main__":
    main()
