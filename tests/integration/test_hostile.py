"""Hostile input through the real worker: every bad message lands in the dead-letter topic with a
precise reason, strange but valid names are stored verbatim, the valid events around them are
all processed, and a flood of runs that never finish is abandoned and leaves no state behind."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition
from neo4j import Driver

from lineage_stream.cli import spark_key
from tests.fleet import fleet_event, spark_fleet
from tests.harness import (
    WorkerProcess,
    consume_all,
    drain,
    produce,
    run_count,
    unique,
    wait_until,
)
from tests.integration.test_worker import create_topic, worker_env

pytestmark = pytest.mark.integration

INJECTION = "x'}) MATCH (n) DETACH DELETE n //"
STRANGE_NAMES = [INJECTION, "заказы_📦", "tab\there\x01ctrl", "$param {a: 1}"]
FLOOD = 300


def _valid(event_type: str = "COMPLETE", job: str = "hostile_neighbour") -> dict[str, Any]:
    return fleet_event(event_type, str(uuid.uuid4()), job, datetime.now(UTC) - timedelta(minutes=5))


def _changed(change: Callable[[dict[str, Any]], None]) -> bytes:
    document = _valid()
    change(document)
    return orjson.dumps(document)


def _with_raw_facet(raw_facet: bytes) -> bytes:
    document = orjson.dumps(_valid())
    return document[:-1] + b',"deepFacet":' + raw_facet + b"}"


def hostile_inputs() -> dict[bytes, tuple[str, str]]:
    """Each bad message, with the dead-letter reason and a phrase its detail must contain."""
    nested = b'{"a":' * 2000 + b"{}" + b"}" * 2000
    cases: list[tuple[bytes, str, str]] = [
        (b"not json at all", "not_json", ""),
        (orjson.dumps(_valid())[:-40], "not_json", ""),
        (b"[1, 2]", "invalid_event", "JSON object"),
        (b'"a string"', "invalid_event", "JSON object"),
        (_changed(lambda d: d.update(run=5)), "invalid_event", "run"),
        (_changed(lambda d: d["run"].pop("runId")), "invalid_event", "runId"),
        (_changed(lambda d: d.pop("job")), "invalid_event", "job"),
        (_changed(lambda d: d.pop("eventTime")), "invalid_event", "eventTime"),
        (_changed(lambda d: d["run"].update(runId="run-42")), "invalid_event", "UUID"),
        (_changed(lambda d: d.update(eventType="EXPLODE")), "unsupported", "EXPLODE"),
        (_changed(lambda d: d.update(eventTime="2999-01-01T00:00:00Z")), "invalid_event", "future"),
        (_changed(lambda d: d.update(eventTime="1970-01-01T00:00:00Z")), "invalid_event", "2000"),
        (_changed(lambda d: d["job"].update(name="")), "invalid_event", "job.name"),
        (_changed(lambda d: d["job"].update(name="n" * 1_000_000)), "too_large", ""),
        (_changed(lambda d: d["job"].update(name="n" * 5000)), "invalid_event", "job.name"),
        (_with_raw_facet(nested), "not_json", "depth"),
    ]
    return {raw: (reason, phrase) for raw, reason, phrase in cases}


def _changelog_live_keys(bootstrap: str, topic: str) -> set[bytes]:
    """Keys whose latest changelog record is not a tombstone: the pairing state left."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": unique("reader"), "enable.auto.commit": False}
    )
    live: set[bytes] = set()
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        seen = {p: 0 for p in partitions}
        while any(seen[p] < ends[p] for p in partitions):
            message = consumer.poll(5)
            assert message is not None, "the changelog stopped before its end offsets"
            if message.error():
                continue
            seen[message.partition()] = message.offset() + 1
            key = message.key() or b""
            if message.value() is None:
                live.discard(key)
            else:
                live.add(key)
    finally:
        consumer.close()
    return live


def test_hostile_input_is_dead_lettered_and_everything_else_survives(
    kafka_bootstrap: str, neo4j_uri: str, empty_graph: Driver, tmp_path: Path
) -> None:
    topic = unique("hostile")
    create_topic(kafka_bootstrap, topic, partitions=2)
    hostile = hostile_inputs()
    strange = [
        fleet_event(
            "COMPLETE",
            str(uuid.uuid4()),
            name,
            datetime.now(UTC) - timedelta(minutes=5),
            outputs=[name],
        )
        for name in STRANGE_NAMES
    ]
    for event in strange:  # a SQL facet holding an injection attempt is data too
        event["job"]["facets"]["sql"] = {"query": INJECTION}
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    flood = [fleet_event("START", str(uuid.uuid4()), "flood", long_ago) for _ in range(FLOOD)]
    fleet = spark_fleet(applications=10, seed=5)
    messages: list[tuple[bytes | None, bytes]] = list(fleet[: len(fleet) // 2])
    messages += [(None, raw) for raw in hostile]
    messages += [(spark_key(event), orjson.dumps(event)) for event in strange + flood]
    messages += fleet[len(fleet) // 2 :]
    produce(kafka_bootstrap, topic, messages)
    fleet_runs = len({orjson.loads(value)["run"]["runId"] for _, value in fleet})

    env = worker_env(kafka_bootstrap, neo4j_uri, topic, LINEAGE_RUN_TIMEOUT_S="4")
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        drain(worker, kafka_bootstrap, topic)
        wait_until(
            lambda: (
                worker.assert_alive()
                or run_count(empty_graph, "p.jobName = 'flood' AND p.state = 'ABANDONED'") == FLOOD
            ),
            timeout=60,
            what=f"{FLOOD} never-finished runs to be abandoned",
        )
        changelog = f"{env['LINEAGE_CONSUMER_GROUP']}-runs-changelog"
        flood_keys = {event["run"]["runId"].encode() for event in flood}
        wait_until(
            lambda: not flood_keys & _changelog_live_keys(kafka_bootstrap, changelog),
            timeout=60,
            what="the abandoned runs to leave the pairing state",
        )
        dead = consume_all(kafka_bootstrap, f"{topic}.dlq", expected=len(hostile) + 1, timeout=15)
    finally:
        assert worker.stop() == 0

    assert len(dead) == len(hostile), "a message was dead-lettered twice or wrongly"
    for message in dead:
        assert message.value in hostile, "a valid event was dead-lettered"
        reason, phrase = hostile[message.value]
        assert message.headers["lineage.error.reason"] == reason, message.headers
        assert phrase in message.headers["lineage.error.detail"], message.headers
        assert message.headers["lineage.source.topic"] == topic
    assert run_count(empty_graph, "p.jobName STARTS WITH 'app_'") == fleet_runs
    records, _, _ = empty_graph.execute_query(
        "MATCH (j:Job)-[:PRODUCES]->(d:Dataset) WHERE j.name IN $names "
        "RETURN j.name AS job, j.sql AS sql, d.name AS dataset",
        names=STRANGE_NAMES,
    )
    stored = {(r["job"], r["sql"], r["dataset"]) for r in records}
    # Dataset names lose trailing slashes (identity normalisation), nothing else.
    expected = {(name, INJECTION, f"/warehouse/{name}".rstrip("/")) for name in STRANGE_NAMES}
    assert stored == expected
    total, _, _ = empty_graph.execute_query("MATCH (n) RETURN count(n) AS n")
    assert total[0]["n"] > FLOOD, "the injection strings deleted nodes"
