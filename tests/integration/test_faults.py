"""Faults on the real stack: each run ends with the graph equal, node for node and edge for edge,
to a clean run's on the same events.

The fleet's child runs all also write one hot table, so concurrent writers contend on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from neo4j import Driver

from tests.conftest import StackControl
from tests.fleet import spark_fleet
from tests.harness import (
    GraphSnapshot,
    WorkerProcess,
    clear_graph,
    drain,
    free_port,
    get,
    produce,
    run_count,
    scrape,
    snapshot,
    unique,
    value,
    wait_until,
)
from tests.integration.test_worker import create_topic, worker_env

pytestmark = pytest.mark.integration

HOT_TABLE = "hot_orders"
# Short sessions so a killed worker's partitions move in seconds; small batches so a fault
# lands mid-stream; no metrics port, which two workers on one machine would contend for.
FAULT_SETTINGS = {
    "LINEAGE_BATCH_SIZE": "40",
    "LINEAGE_KAFKA_SESSION_TIMEOUT_S": "6",
    "LINEAGE_METRICS_PORT": "0",
}


@dataclass(frozen=True)
class Fleet:
    topic: str
    runs: int
    clean: GraphSnapshot


@pytest.fixture(scope="module")
def fleet(
    kafka_bootstrap: str, neo4j_uri: str, neo4j_driver: Driver, tmp_path_factory: Any
) -> Fleet:
    messages = spark_fleet(applications=100, seed=23, hot_table=HOT_TABLE)
    topic = unique("faults")
    create_topic(kafka_bootstrap, topic, partitions=6)
    produce(kafka_bootstrap, topic, messages, compression="lz4")
    runs = len({orjson.loads(value)["run"]["runId"] for _, value in messages})

    clear_graph(neo4j_driver)
    log = tmp_path_factory.mktemp("clean") / "worker.log"
    worker = WorkerProcess(worker_env(kafka_bootstrap, neo4j_uri, topic), log).start()
    try:
        drain(worker, kafka_bootstrap, topic)
    finally:
        assert worker.stop() == 0
    assert run_count(neo4j_driver) == runs
    return Fleet(topic, runs, snapshot(neo4j_driver))


def fault_env(kafka_bootstrap: str, neo4j_uri: str, fleet: Fleet) -> dict[str, str]:
    return worker_env(kafka_bootstrap, neo4j_uri, fleet.topic, **FAULT_SETTINGS)


def wait_for_runs(worker: WorkerProcess, driver: Driver, at_least: int) -> None:
    wait_until(
        lambda: worker.assert_alive() or run_count(driver) >= at_least,
        timeout=120,
        what=f"at least {at_least} runs in the graph",
    )


def not_ready_reason(base: str) -> str | None:
    status, body = get(f"{base}/readyz")
    return body if status == 503 else None


def assert_same_graph(driver: Driver, fleet: Fleet) -> None:
    after = snapshot(driver)
    assert after == fleet.clean, after.diff(fleet.clean)


def test_neo4j_down_for_30_s_mid_stream_loses_nothing(
    kafka_bootstrap: str,
    neo4j_uri: str,
    empty_graph: Driver,
    stack_control: StackControl,
    fleet: Fleet,
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**fault_env(kafka_bootstrap, neo4j_uri, fleet), "LINEAGE_METRICS_PORT": str(port)}
    worker = WorkerProcess(env, tmp_path / "w.log").start()
    try:
        wait_for_runs(worker, empty_graph, fleet.runs // 4)
        stack_control.stop("neo4j")
        try:
            outage_ends = time.monotonic() + 30
            body = wait_until(
                lambda: not_ready_reason(base), timeout=20, what="/readyz to report the outage"
            )
            assert "Neo4j" in body
            time.sleep(max(0.0, outage_ends - time.monotonic()))  # the rest of the outage
            worker.assert_alive()
        finally:
            stack_control.start("neo4j")
        drain(worker, kafka_bootstrap, fleet.topic)
        wait_until(lambda: get(f"{base}/readyz")[0] == 200, timeout=30, what="ready again")
        retries = value(scrape(base), "lineage_stream_neo4j_retries_total")
    finally:
        assert worker.stop() == 0
    assert retries > 0, "the outage was never retried"
    assert_same_graph(empty_graph, fleet)


def test_kafka_broker_restart_mid_stream_loses_nothing(
    kafka_bootstrap: str,
    neo4j_uri: str,
    empty_graph: Driver,
    stack_control: StackControl,
    fleet: Fleet,
    tmp_path: Path,
) -> None:
    worker = WorkerProcess(fault_env(kafka_bootstrap, neo4j_uri, fleet), tmp_path / "w.log")
    worker.start()
    try:
        wait_for_runs(worker, empty_graph, fleet.runs // 4)
        stack_control.stop("kafka")
        try:
            time.sleep(10)  # the outage itself
        finally:
            stack_control.start("kafka")
        drain(worker, kafka_bootstrap, fleet.topic)
    finally:
        assert worker.stop() == 0
    assert_same_graph(empty_graph, fleet)


def test_a_killed_workers_partitions_and_runs_are_finished_by_the_survivor(
    kafka_bootstrap: str,
    neo4j_uri: str,
    empty_graph: Driver,
    fleet: Fleet,
    tmp_path: Path,
) -> None:
    env = fault_env(kafka_bootstrap, neo4j_uri, fleet)
    doomed = WorkerProcess(env, tmp_path / "doomed.log").start()
    survivor = WorkerProcess(env, tmp_path / "survivor.log").start()
    try:
        wait_for_runs(doomed, empty_graph, fleet.runs // 3)
        doomed.kill()
        drain(survivor, kafka_bootstrap, fleet.topic)
    finally:
        doomed.kill()
        assert survivor.stop() == 0
    assert_same_graph(empty_graph, fleet)
