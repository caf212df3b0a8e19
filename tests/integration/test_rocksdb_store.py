"""The pairing table on RocksDB (`LINEAGE_STORE=rocksdb`), with the worker's bounded buffers:
runs are stored on disk, and a run that started before a restart is paired after it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import rocksdict
from neo4j import Driver

from lineage_stream.cli import spark_key
from tests.harness import WorkerProcess, drain, produce, unique
from tests.integration.test_worker import DATAPROC, EXPECTED_RUNS, create_topic, worker_env

pytestmark = pytest.mark.integration


def stored_run_ids(data_dir: Path) -> set[str]:
    """The keys of every partition's RocksDB database, read while no worker holds them."""
    found: set[str] = set()
    databases = sorted(data_dir.rglob("runs-*.db"))
    assert databases, f"no RocksDB database under {data_dir}"
    for path in databases:
        db = rocksdict.Rdict(
            str(path),
            options=rocksdict.Options(raw_mode=True),
            access_type=rocksdict.AccessType.read_only(),
        )
        try:
            found.update(key.decode() for key, _ in db.items() if not key.startswith(b"__faust"))
        finally:
            db.close()
    return found


def test_runs_are_stored_in_rocksdb_and_paired_across_a_restart(
    kafka_bootstrap: str, neo4j_uri: str, empty_graph: Driver, tmp_path: Path
) -> None:
    topic = unique("rocksdb")
    create_topic(kafka_bootstrap, topic, partitions=2)
    events = [orjson.loads((DATAPROC / f"{n}.json").read_bytes()) for n in range(1, 17)]
    messages = [(spark_key(event), orjson.dumps(event)) for event in events]
    data_dir = tmp_path / "data"
    env = worker_env(
        kafka_bootstrap, neo4j_uri, topic, LINEAGE_STORE="rocksdb", LINEAGE_DATA_DIR=str(data_dir)
    )
    first_half = {event["run"]["runId"] for event in events[:8]}

    produce(kafka_bootstrap, topic, messages[:8])
    worker = WorkerProcess(env, tmp_path / "first.log").start()
    try:
        drain(worker, kafka_bootstrap, topic)
    finally:
        assert worker.stop() == 0
    # Runs the worker already saw finish may be forgotten; the others are on disk.
    assert stored_run_ids(data_dir) & first_half

    produce(kafka_bootstrap, topic, messages[8:])
    worker = WorkerProcess(env, tmp_path / "second.log").start()
    try:
        drain(worker, kafka_bootstrap, topic)
    finally:
        assert worker.stop() == 0

    records, _, _ = empty_graph.execute_query(
        "MATCH (p:Process) RETURN p.runId AS run, p.state AS state, p.durationMs AS ms"
    )
    assert {r["run"]: (r["state"], r["ms"]) for r in records} == {
        run_id: (expected[1], expected[4]) for run_id, expected in EXPECTED_RUNS.items()
    }
