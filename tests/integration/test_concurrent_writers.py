"""Two workers writing at once, on real Neo4j: batches that share datasets deadlock now and
then; the writer retries the victim at once, and together they write the graph one writer
would.

The driver's managed transactions would retry a deadlock too, but only after a second or more
of back-off, which showed as multi-second latency with two workers; the writer's own retry
counts each one in `lineage_stream_neo4j_deadlocks_total`.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence

import pytest
from neo4j import AsyncGraphDatabase, Driver
from prometheus_client import REGISTRY

from bench import ceiling
from bench.generator import FleetProfile, fleet
from lineage_stream import cypher
from lineage_stream.neo4j_writer import Neo4jWriter
from tests.harness import clear_graph

pytestmark = pytest.mark.integration

SMALL_EVENTS = FleetProfile(max_inputs=3, max_columns=20, large_event_rate=0.0)
BATCH = 100


def graph_shape(driver: Driver) -> dict[str, object]:
    nodes, _, _ = driver.execute_query(
        "MATCH (n) RETURN labels(n)[0] AS label, count(*) AS n ORDER BY label"
    )
    edges, _, _ = driver.execute_query(
        "MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS n ORDER BY type"
    )
    runs, _, _ = driver.execute_query(
        "MATCH (p:Process) RETURN p.runId + ':' + p.state AS run ORDER BY run"
    )
    derives, _, _ = driver.execute_query(
        "MATCH (s:Field)-[d:DERIVES]->(t:Field) "
        "RETURN s.name + '.' + s.field + '>' + t.name + '.' + t.field + '@' + d.jobName AS edge "
        "ORDER BY edge"
    )
    return {
        "nodes": {r["label"]: r["n"] for r in nodes},
        "edges": {r["type"]: r["n"] for r in edges},
        "runs": [r["run"] for r in runs],
        "derives": [r["edge"] for r in derives],
    }


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


def test_two_writers_sharing_datasets_retry_deadlocks_and_write_one_graph(
    empty_graph: Driver, neo4j_uri: str, neo4j_auth: tuple[str, str]
) -> None:
    for statement in cypher.SCHEMA:
        empty_graph.execute_query(statement)
    events = list(fleet(11, 4000, SMALL_EVENTS))
    # Split as a consumer group hands two workers partitions: by the Spark key.
    halves = [[e.value for e in events if zlib.crc32(e.key) % 2 == half] for half in (0, 1)]
    before = deadlocks()

    asyncio.run(write_concurrently(neo4j_uri, neo4j_auth, halves))

    # Zipf-popular datasets make deadlocks near certain at this size (dozens per run here):
    # none would mean the retry path went untested.
    assert deadlocks() > before
    together = graph_shape(empty_graph)
    clear_graph(empty_graph)
    asyncio.run(write_concurrently(neo4j_uri, neo4j_auth, [[*halves[0], *halves[1]]]))
    assert together == graph_shape(empty_graph)
