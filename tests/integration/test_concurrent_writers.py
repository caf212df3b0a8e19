"""Two workers writing at once, on real Neo4j: together they write the graph one writer would,
and a transaction chosen as a deadlock victim is retried at once until it commits.

The driver's managed transactions would retry a deadlock too, but only after a second or more
of back-off, which showed as multi-second latency with two workers; the writer's own retry
counts each one in `lineage_stream_neo4j_deadlocks_total`.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable, Sequence

import pytest
from neo4j import AsyncGraphDatabase, Driver
from prometheus_client import REGISTRY

from bench import ceiling
from bench.generator import FleetProfile, GeneratedEvent, fleet
from lineage_stream import cypher
from lineage_stream.neo4j_writer import Neo4jWriter
from tests.harness import clear_graph, snapshot

pytestmark = pytest.mark.integration

SMALL_EVENTS = FleetProfile(max_inputs=3, max_columns=20, large_event_rate=0.0)
BATCH = 100


async def write_in_batches(writer: Neo4jWriter, values: Sequence[bytes]) -> None:
    """What one worker writes for its partitions, all planned first so that the two writers'
    transactions follow each other closely."""
    prepared = [
        await writer.prepare(events, runs) for events, runs in ceiling.batches(values, BATCH)
    ]
    for write in prepared:
        await writer.commit(write)


async def write_concurrently(uri: str, auth: tuple[str, str], halves: list[list[bytes]]) -> None:
    async with AsyncGraphDatabase.driver(uri, auth=auth) as driver:
        await asyncio.gather(
            *(write_in_batches(Neo4jWriter(driver, "neo4j"), half) for half in halves)
        )


def deadlocks() -> float:
    return REGISTRY.get_sample_value("lineage_stream_neo4j_deadlocks_total") or 0.0


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(lambda event: event.key, id="by-spark-key"),
        # LINEAGE_REPARTITION_BY_RUN: a job's runs, and so the job's node, go to both workers.
        pytest.param(lambda event: event.run_id.encode(), id="by-run-id"),
    ],
)
def test_two_writers_sharing_datasets_write_the_graph_one_writer_writes(
    empty_graph: Driver,
    neo4j_uri: str,
    neo4j_auth: tuple[str, str],
    key: Callable[[GeneratedEvent], bytes],
) -> None:
    for statement in cypher.SCHEMA:
        empty_graph.execute_query(statement)
    events = list(fleet(11, 4000, SMALL_EVENTS))
    # Split as a consumer group hands two workers partitions: by the message key.
    halves = [[e.value for e in events if zlib.crc32(key(e)) % 2 == half] for half in (0, 1)]

    asyncio.run(write_concurrently(neo4j_uri, neo4j_auth, halves))

    # Every property too: a guard that read a dataset before locking it let the older of two
    # concurrent schema or lastWrittenAt updates land last.
    together = snapshot(empty_graph)
    clear_graph(empty_graph)
    asyncio.run(write_concurrently(neo4j_uri, neo4j_auth, [[*halves[0], *halves[1]]]))
    alone = snapshot(empty_graph)
    assert together == alone, together.diff(alone)


async def lock_in_turn(writer: Neo4jWriter, first: int, second: int, times: int) -> None:
    increment = "MATCH (n:Counter {id: $id}) SET n.count = n.count + 1"
    for _ in range(times):
        # The writer's one transaction per batch, with statements of our own.
        await writer._write_once([(increment, {"id": first}), (increment, {"id": second})])


async def lock_in_opposite_orders(uri: str, auth: tuple[str, str], times: int) -> None:
    async with AsyncGraphDatabase.driver(uri, auth=auth) as driver:
        await asyncio.gather(
            lock_in_turn(Neo4jWriter(driver, "neo4j"), 1, 2, times),
            lock_in_turn(Neo4jWriter(driver, "neo4j"), 2, 1, times),
        )


def test_deadlock_victims_are_retried_until_every_transaction_committed(
    empty_graph: Driver, neo4j_uri: str, neo4j_auth: tuple[str, str]
) -> None:
    empty_graph.execute_query("UNWIND [1, 2] AS id CREATE (:Counter {id: id, count: 0})")
    before = deadlocks()

    asyncio.run(lock_in_opposite_orders(neo4j_uri, neo4j_auth, times=100))

    # Two transactions locking two nodes in opposite orders, a hundred times each, deadlock
    # near certainly: none would mean the retry went untested.
    assert deadlocks() > before
    counts, _, _ = empty_graph.execute_query(
        "MATCH (n:Counter) RETURN n.count AS count ORDER BY n.id"
    )
    assert [record["count"] for record in counts] == [200, 200]
