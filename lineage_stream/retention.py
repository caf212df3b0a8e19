"""Retention: delete old Process nodes in small transactions, keeping what analysts still need.

Kept whatever their age: the latest runs of every job, any run a Dataset names as its
`lastWrittenBy`, and runs still RUNNING. Jobs, Datasets and Fields are never pruned.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from neo4j import AsyncDriver

from lineage_stream import cypher

PRUNE_BATCH_SIZE = 1000


async def prune_processes(
    driver: AsyncDriver,
    database: str,
    *,
    now: datetime,
    older_than: timedelta,
    keep_runs: int,
    batch_size: int = PRUNE_BATCH_SIZE,
) -> int:
    """Delete finished runs that ended before `now - older_than`; returns how many went."""
    async with driver.session(database=database) as session:
        # CALL { } IN TRANSACTIONS needs an auto-commit transaction: session.run, not a tx.
        result = await session.run(
            cypher.PRUNE_PROCESSES,
            cutoff=now - older_than,
            keepRuns=keep_runs,
            batchSize=batch_size,
        )
        record = await result.single(strict=True)
    return int(record["pruned"])
