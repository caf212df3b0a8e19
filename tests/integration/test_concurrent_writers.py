"""Two workers writing at once, on real Neo4j: batches that share datasets wait for each other's
locks instead of deadlocking, and together write the graph one writer would.

A deadlock is not lost data (the driver retries the victim) but it costs a rolled-back
transaction and about a second of back-off; with two workers on a Zipf-popular dataset pool, a
fifth of the transactions deadlocked before the writer locked datasets in one order.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Sequence

import pytest
from neo4j import Driver, ManagedTransaction
from neo4j.exceptions import TransientError

from bench import ceiling
from bench.generator import FleetProfile, fleet
from lineage_stream import cypher
from tests.harness import clear_graph

pytestmark = pytest.mark.integration

DEADLOCK = "Neo.TransientError.Transaction.DeadlockDetected"
SMALL_EVENTS = FleetProfile(max_inputs=3, max_columns=20, large_event_rate=0.0)


def graph_shape(driver: Driver) -> dict[str, object]:
    nodes, _, _ = driver.execute_query(
        "MATCH (n) RETURN labels(n)[0] AS label, count(*) AS n ORDER BY label"
    )
    edges, _, _ = driver.execute_query(
        "MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS n ORDER BY type"
    )
    derives, _, _ = driver.execute_query(
        "MATCH (s:Field)-[d:DERIVES]->(t:Field) "
        "RETURN s.name + '.' + s.field + '>' + t.name + '.' + t.field + '@' + d.jobName AS edge "
        "ORDER BY edge"
    )
    return {
        "nodes": {r["label"]: r["n"] for r in nodes},
        "edges": {r["type"]: r["n"] for r in edges},
        "derives": [r["edge"] for r in derives],
    }


def write_all(tx: ManagedTransaction, batch: ceiling.PreparedBatch) -> None:
    for statement, parameters in batch.statements:
        tx.run(statement, parameters).consume()


def test_two_writers_sharing_datasets_never_deadlock(empty_graph: Driver) -> None:
    for statement in cypher.SCHEMA:
        empty_graph.execute_query(statement)
    events = list(fleet(11, 4000, SMALL_EVENTS))
    # Split as two workers of one group would be handed partitions: by the Spark key.
    halves = [[e.value for e in events if zlib.crc32(e.key) % 2 == half] for half in (0, 1)]
    batches = [ceiling.prepare(values, 100) for values in halves]
    deadlocks: list[TransientError] = []
    failures: list[BaseException] = []

    def write(worker_batches: Sequence[ceiling.PreparedBatch]) -> None:
        try:
            with empty_graph.session(database="neo4j") as session:
                for batch in worker_batches:
                    while True:
                        # An explicit transaction: the driver's managed ones would retry a
                        # deadlock out of sight.
                        try:
                            with session.begin_transaction() as tx:
                                write_all(tx, batch)
                                tx.commit()
                            break
                        except TransientError as exc:
                            if exc.code != DEADLOCK:
                                raise
                            deadlocks.append(exc)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(half,)) for half in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not failures, failures
    assert [d.message for d in deadlocks] == []
    together = graph_shape(empty_graph)
    clear_graph(empty_graph)
    with empty_graph.session(database="neo4j") as session:
        for batch in [*batches[0], *batches[1]]:
            session.execute_write(write_all, batch)
    assert together == graph_shape(empty_graph)
