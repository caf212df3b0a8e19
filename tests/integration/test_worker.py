"""The worker on the real stack: real Spark events in (shuffled, duplicated, every codec, bad
input mixed in), the exact graph and dead-letter topic out."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from neo4j import Driver

from lineage_stream.cli import spark_key
from tests.harness import (
    ConsumedMessage,
    WorkerProcess,
    clear_graph,
    consume_all,
    produce,
    refused_worker,
    unique,
    wait_until,
)

pytestmark = pytest.mark.integration

SHARED = Path(__file__).resolve().parents[3] / "shared"
DATAPROC = (
    SHARED / "openlineage-samples/compatibility-tests/spark_dataproc_simple_producer_test_complete"
)
APP_RUN = "019299c5-12f5-7946-b5b2-c6abab662e20"
HIVE = "hive://dataproc-producer-test-m:9083"
WAREHOUSE = "hdfs://dataproc-producer-test-m/user/hive/warehouse"
MAX_EVENT_BYTES = 64 * 1024
CODECS = ("gzip", "snappy", "lz4", "zstd")


def at(clock: str) -> datetime:
    """A time on the day of the Dataproc sample run."""
    return datetime.fromisoformat(f"2024-10-17T{clock}+00:00")


# runId -> (job name suffix, state, startedAt, endedAt, durationMs), read off the 16 files.
EXPECTED_RUNS = {
    APP_RUN: ("", "COMPLETE", at("09:17:51.101"), at("09:18:32.504"), 41403),
    "019299c5-364c-79a9-9d83-659761b84279": (
        ".drop_table",
        "COMPLETE",
        at("09:18:11.500"),
        at("09:18:14.755"),
        3255,
    ),
    "019299c5-4630-75cc-a27a-33e6e55ec50d": (
        ".drop_table",
        "COMPLETE",
        None,
        at("09:18:14.923"),
        None,
    ),
    "019299c5-4f43-7e45-aa6f-c65164159854": (
        ".execute_create_table_command.warehouse_t1",
        "COMPLETE",
        None,
        at("09:18:17.298"),
        None,
    ),
    "019299c5-5488-7db5-a64e-11439fc53117": (
        ".execute_insert_into_hive_table.warehouse_t1",
        "COMPLETE",
        at("09:18:19.239"),
        at("09:18:25.647"),
        6408,
    ),
    "019299c5-6ff9-7864-8dd7-e8142a2b6047": (
        ".execute_create_hive_table_as_select_command.default_t2",
        "COMPLETE",
        at("09:18:26.061"),
        at("09:18:29.268"),
        3207,
    ),
    "019299c5-73cf-7069-a70f-74eb8070b577": (
        ".execute_insert_into_hive_table.warehouse_t2",
        "COMPLETE",
        at("09:18:26.825"),
        at("09:18:29.267"),
        2442,
    ),
}


def bad_inputs() -> dict[str, tuple[bytes, str]]:
    """Hostile inputs, each with the dead-letter reason it must get."""
    good = (DATAPROC / "11.json").read_bytes()
    not_uuid = orjson.loads(good)
    not_uuid["run"]["runId"] = "run-1"
    bogus_type = orjson.loads(good)
    bogus_type["eventType"] = "BOGUS"
    oversized = orjson.loads(good)
    oversized["run"]["facets"]["padding"] = {"blob": "x" * MAX_EVENT_BYTES}
    return {
        "garbage": (b"\x00\x01 this is not json", "not_json"),
        "truncated": (good[: len(good) // 2], "not_json"),
        "array": (b"[1, 2, 3]", "invalid_event"),
        "run id not a uuid": (orjson.dumps(not_uuid), "invalid_event"),
        "unknown event type": (orjson.dumps(bogus_type), "unsupported"),
        "too large": (orjson.dumps(oversized), "too_large"),
    }


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions)])
    futures[name].result(30)


def worker_env(bootstrap: str, uri: str, topic: str, **extra: str) -> dict[str, str]:
    return {
        "LINEAGE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "LINEAGE_NEO4J_URI": uri,
        "LINEAGE_TOPIC": topic,
        "LINEAGE_DLQ_TOPIC": f"{topic}.dlq",
        "LINEAGE_CONSUMER_GROUP": unique("group"),
        "LINEAGE_MAX_EVENT_BYTES": str(MAX_EVENT_BYTES),
        "LINEAGE_BATCH_TIMEOUT_MS": "100",
        **extra,
    }


class Ingested:
    def __init__(self, driver: Driver, dead_letters: list[ConsumedMessage], exit_code: int):
        self.driver = driver
        self.dead_letters = dead_letters
        self.exit_code = exit_code

    def rows(self, query: str, **params: Any) -> list[dict[str, Any]]:
        records, _, _ = self.driver.execute_query(query, params)
        return [record.data() for record in records]


@pytest.fixture(scope="module")
def ingested(
    kafka_bootstrap: str, neo4j_uri: str, neo4j_driver: Driver, tmp_path_factory: Any
) -> Ingested:
    clear_graph(neo4j_driver)
    topic = unique("spark")
    create_topic(kafka_bootstrap, topic, partitions=3)
    events = [(DATAPROC / f"{n}.json").read_bytes() for n in range(1, 17)]
    shuffled = random.Random(7).sample(events, len(events)) + random.Random(8).sample(events, 5)
    keyed = [(spark_key(orjson.loads(raw)), raw) for raw in shuffled]
    bad = [(None, raw) for raw, _ in bad_inputs().values()]
    mixed = keyed[:6] + bad[:3] + keyed[6:14] + bad[3:] + keyed[14:]
    for codec, chunk in zip(CODECS, [mixed[i::4] for i in range(4)], strict=True):
        produce(kafka_bootstrap, topic, chunk, compression=codec)

    log = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = WorkerProcess(worker_env(kafka_bootstrap, neo4j_uri, topic), log).start()

    def finished() -> bool:
        worker.assert_alive()
        records, _, _ = neo4j_driver.execute_query(
            "MATCH (p:Process) WHERE p.state <> 'RUNNING' RETURN count(p) AS n"
        )
        return records[0]["n"] == len(EXPECTED_RUNS)

    try:
        wait_until(finished, timeout=90, what="the seven Dataproc runs to finish in Neo4j")
        dead_letters = consume_all(kafka_bootstrap, f"{topic}.dlq", expected=len(bad))
    finally:
        exit_code = worker.stop()
    return Ingested(neo4j_driver, dead_letters, exit_code)


def test_every_run_is_paired_into_one_process(ingested: Ingested) -> None:
    rows = ingested.rows(
        "MATCH (j:Job)-[:HAS_RUN]->(p:Process) RETURN p.runId AS runId, j.name AS job, "
        "p.state AS state, p.startedAt AS startedAt, p.endedAt AS endedAt, "
        "p.durationMs AS durationMs, p.jobName AS jobName"
    )
    actual = {
        row["runId"]: (
            row["job"],
            row["state"],
            row["startedAt"] and row["startedAt"].to_native(),
            row["endedAt"] and row["endedAt"].to_native(),
            row["durationMs"],
        )
        for row in rows
    }
    expected = {
        run_id: (f"cl_i_test_application{suffix}", state, started, ended, duration)
        for run_id, (suffix, state, started, ended, duration) in EXPECTED_RUNS.items()
    }
    assert actual == expected
    assert len(rows) == len(EXPECTED_RUNS), "a run has more than one job or Process node"


def test_children_point_at_the_application_run_and_job(ingested: Ingested) -> None:
    children = ingested.rows(
        "MATCH (c:Process)-[:CHILD_OF]->(p:Process) RETURN c.runId AS child, p.runId AS parent"
    )
    assert sorted(row["child"] for row in children) == sorted(set(EXPECTED_RUNS) - {APP_RUN})
    assert {row["parent"] for row in children} == {APP_RUN}
    app = ingested.rows(
        "MATCH (p:Process {runId: $run}) RETURN p.failedChildRuns AS failed, "
        "p.sparkVersion AS spark, p.openlineageVersion AS adapter",
        run=APP_RUN,
    )
    assert app == [{"failed": 0, "spark": "3.5.1", "adapter": "1.23.0"}]
    job_children = ingested.rows(
        "MATCH (c:Job)-[:CHILD_OF]->(p:Job) RETURN c.name AS child, p.name AS parent"
    )
    assert {row["parent"] for row in job_children} == {"cl_i_test_application"}
    assert len(job_children) == 5


def test_datasets_are_keyed_by_table_identity_with_locations_as_aliases(
    ingested: Ingested,
) -> None:
    rows = ingested.rows(
        "MATCH (d:Dataset) RETURN d.namespace AS namespace, d.name AS name, "
        "d.aliases AS aliases, d.fields AS fields"
    )
    actual = {(r["namespace"], r["name"]): (r["aliases"], r["fields"]) for r in rows}
    t1_location = "hdfs://dataproc-producer-test-m/user/hive/warehouse/t1"
    t2_location = "hdfs://dataproc-producer-test-m/user/hive/warehouse/t2"
    assert actual == {
        (HIVE, "default.t1"): ([t1_location], ["a", "b"]),
        (HIVE, "default.t2"): ([t2_location], ["a", "b"]),
        # DROP TABLE events name the table by the warehouse path (kept as emitted) and carry
        # an empty schema.
        (WAREHOUSE, "default.t1"): ([t1_location], []),
        (WAREHOUSE, "default.t2"): ([t2_location], []),
    }


def test_run_and_job_edges_follow_the_data(ingested: Ingested) -> None:
    inputs = ingested.rows(
        "MATCH (d:Dataset)-[:INPUT_TO]->(p:Process) RETURN d.name AS d, p.runId AS run"
    )
    assert inputs == [{"d": "default.t1", "run": "019299c5-73cf-7069-a70f-74eb8070b577"}]
    outputs = ingested.rows(
        "MATCH (p:Process)-[o:OUTPUT_TO]->(d:Dataset {namespace: $hive}) "
        "RETURN p.runId AS run, d.name AS d, o.rowCount AS rows, o.bytes AS bytes",
        hive=HIVE,
    )
    assert sorted(outputs, key=lambda r: r["run"]) == [
        {
            "run": "019299c5-4f43-7e45-aa6f-c65164159854",
            "d": "default.t1",
            "rows": None,
            "bytes": None,
        },
        # outputStatistics arrive only on a RUNNING event; COMPLETE omits them.
        {"run": "019299c5-5488-7db5-a64e-11439fc53117", "d": "default.t1", "rows": 2, "bytes": 8},
        {
            "run": "019299c5-6ff9-7864-8dd7-e8142a2b6047",
            "d": "default.t2",
            "rows": None,
            "bytes": None,
        },
        {"run": "019299c5-73cf-7069-a70f-74eb8070b577", "d": "default.t2", "rows": 2, "bytes": 8},
    ]
    consumed = ingested.rows(
        "MATCH (d:Dataset)-[e:CONSUMED_BY]->(j:Job) RETURN d.name AS d, j.name AS job, "
        "e.lastRunId AS run"
    )
    assert consumed == [
        {
            "d": "default.t1",
            "job": "cl_i_test_application.execute_insert_into_hive_table.warehouse_t2",
            "run": "019299c5-73cf-7069-a70f-74eb8070b577",
        }
    ]
    last_written = ingested.rows(
        "MATCH (d:Dataset {namespace: $hive, name: 'default.t2'}) "
        "RETURN d.lastWrittenBy AS run, d.lastWrittenAt AS at",
        hive=HIVE,
    )
    assert last_written[0]["run"] == "019299c5-6ff9-7864-8dd7-e8142a2b6047"
    assert last_written[0]["at"].to_native() == at("09:18:29.268")


def test_column_lineage_resolves_physical_locations_to_tables(ingested: Ingested) -> None:
    rows = ingested.rows(
        "MATCH (s:Field)-[r:DERIVES]->(t:Field) RETURN s.namespace AS sns, s.name AS sname, "
        "s.field AS sfield, t.name AS tname, t.field AS tfield, r.transformations AS how, "
        "r.jobName AS job ORDER BY sfield"
    )
    job = "cl_i_test_application.execute_insert_into_hive_table.warehouse_t2"
    assert rows == [
        {
            "sns": HIVE,
            "sname": "default.t1",
            "sfield": field,
            "tname": "default.t2",
            "tfield": field,
            "how": ["DIRECT/IDENTITY"],
            "job": job,
        }
        for field in ("a", "b")
    ]


def test_job_remembers_its_latest_run(ingested: Ingested) -> None:
    rows = ingested.rows(
        "MATCH (j:Job {name: 'cl_i_test_application.drop_table'}) "
        "RETURN j.lastRunId AS run, j.lastRunState AS state, j.type AS type"
    )
    # The COMPLETE-only run has no START; its first event is the later of the two.
    assert rows == [
        {"run": "019299c5-4630-75cc-a27a-33e6e55ec50d", "state": "COMPLETE", "type": "SQL_JOB"}
    ]


def test_bad_input_goes_to_the_dead_letter_topic_with_its_reason(ingested: Ingested) -> None:
    expected = {raw: reason for raw, reason in bad_inputs().values()}
    actual = {m.value: m.headers["lineage.error.reason"] for m in ingested.dead_letters}
    assert actual == expected
    for message in ingested.dead_letters:
        assert message.headers["lineage.error.detail"]
        assert message.headers["lineage.source.topic"].startswith("spark-")
        assert int(message.headers["lineage.source.partition"]) in range(3)
        assert int(message.headers["lineage.source.offset"]) >= 0


def test_sigterm_stops_the_worker_cleanly(ingested: Ingested) -> None:
    assert ingested.exit_code == 0


def test_keyless_events_are_repartitioned_by_run(
    kafka_bootstrap: str, neo4j_uri: str, empty_graph: Driver, tmp_path: Path
) -> None:
    """Producers that send no key scatter a run's events over partitions; with
    LINEAGE_REPARTITION_BY_RUN each run is re-keyed by runId before pairing."""
    topic = unique("keyless")
    create_topic(kafka_bootstrap, topic, partitions=3)
    events = [(DATAPROC / f"{n}.json").read_bytes() for n in range(1, 17)]
    produce(kafka_bootstrap, topic, [(None, raw) for raw in random.Random(3).sample(events, 16)])
    env = worker_env(kafka_bootstrap, neo4j_uri, topic, LINEAGE_REPARTITION_BY_RUN="true")
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:

        def finished() -> bool:
            worker.assert_alive()
            records, _, _ = empty_graph.execute_query(
                "MATCH (p:Process) WHERE p.state = 'COMPLETE' RETURN count(p) AS n"
            )
            return records[0]["n"] == len(EXPECTED_RUNS)

        wait_until(finished, timeout=90, what="the seven runs, repartitioned")
        records, _, _ = empty_graph.execute_query(
            "MATCH (p:Process) RETURN p.runId AS run, p.durationMs AS ms"
        )
        assert {r["run"]: r["ms"] for r in records} == {
            run_id: expected[4] for run_id, expected in EXPECTED_RUNS.items()
        }
        group = env["LINEAGE_CONSUMER_GROUP"]
        rekeyed = consume_all(kafka_bootstrap, f"{group}-by-run", expected=16)
        by_partition: dict[bytes | None, set[int]] = {}
        for message in rekeyed:
            by_partition.setdefault(message.key, set()).add(message.partition)
        assert set(by_partition) == {run.encode() for run in EXPECTED_RUNS}
        assert all(len(partitions) == 1 for partitions in by_partition.values())
    finally:
        assert worker.stop() == 0


def test_a_by_run_topic_with_other_partitions_stops_the_worker_with_advice(
    kafka_bootstrap: str, neo4j_uri: str
) -> None:
    """Faust cannot pair a 1-partition by-run topic with a 3-partition changelog: say so."""
    topic = unique("mismatch")
    create_topic(kafka_bootstrap, topic, partitions=3)
    env = worker_env(kafka_bootstrap, neo4j_uri, topic, LINEAGE_REPARTITION_BY_RUN="true")
    by_run = f"{env['LINEAGE_CONSUMER_GROUP']}-by-run"
    create_topic(kafka_bootstrap, by_run, partitions=1)

    message = refused_worker(env)

    assert f"topic {by_run} has 1 partitions but {topic} has 3" in message
