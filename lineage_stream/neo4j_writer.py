"""Writes graph batches to Neo4j: one transaction per batch, one UNWIND statement per kind.

Transient failures (deadlocks, leader switches) are retried by the driver's managed
transactions; outages are retried here with capped backoff until Neo4j is back, which holds the
worker's batch and so pauses consumption: nothing is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from neo4j import AsyncDriver, AsyncManagedTransaction
from neo4j.exceptions import AuthError, Neo4jError, ServiceUnavailable, SessionExpired

from lineage_stream import cypher, metrics
from lineage_stream.errors import GraphUnavailable
from lineage_stream.graph import GraphBatch, Row, WrittenColumns, build_batch, location_aliases
from lineage_stream.naming import DatasetKey
from lineage_stream.openlineage import Event
from lineage_stream.pairing import RunState

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0


async def _write_batch(
    tx: AsyncManagedTransaction,
    events: Sequence[Event],
    states: Sequence[RunState],
    written: WrittenColumns,
) -> GraphBatch:
    known: dict[str, DatasetKey] = {}
    aliases = location_aliases(events, written)
    if aliases:
        result = await tx.run(cypher.RESOLVE_ALIASES, aliases=aliases)
        known = {
            record["alias"]: DatasetKey(record["namespace"], record["name"])
            async for record in result
        }
    batch = written.unwritten(build_batch(events, states, known, written))
    for statement, parameters in statements(batch):
        await (await tx.run(statement, parameters)).consume()
    return batch


def statements(batch: GraphBatch) -> list[tuple[str, dict[str, Any]]]:
    """The statements that write one batch, nodes before the edges that match them."""
    steps = (
        (cypher.UPSERT_JOBS, batch.jobs),
        (cypher.UPSERT_DATASETS, batch.datasets),
        (cypher.MERGE_LOCATION_NODES, [row for row in batch.datasets if row["locations"]]),
        (cypher.UPSERT_PROCESSES, batch.processes),
        # Only runs with a parent: Neo4j would otherwise lock-seek every run before filtering.
        (cypher.LINK_PARENTS, [row for row in batch.processes if row["parentRunId"]]),
        (cypher.LINK_RUN_INPUTS, batch.run_inputs),
        (cypher.LINK_RUN_OUTPUTS, batch.run_outputs),
        (cypher.UPDATE_LAST_WRITTEN, batch.last_writes()),
        (cypher.UPDATE_JOB_LAST_RUN, batch.job_last_runs()),
        (cypher.LINK_JOB_INPUTS, batch.job_inputs),
        (cypher.LINK_JOB_OUTPUTS, batch.job_outputs),
        (cypher.UPSERT_FIELDS, batch.fields),
        (cypher.LINK_DERIVATIONS, batch.derivations),
    )
    found: list[tuple[str, dict[str, Any]]] = [
        (statement, {"rows": _as_wire(rows)}) for statement, rows in steps if rows
    ]
    parents = sorted({row["parentRunId"] for row in batch.processes if row["parentRunId"]})
    if parents:
        found.append((cypher.COUNT_FAILED_CHILDREN, {"parentRunIds": parents}))
    return found


def _as_wire(rows: list[Row]) -> list[Row]:
    """Rows with their datetimes as ISO-8601 text, which the statements parse (see
    `cypher._rows_with_times`)."""
    return [
        {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in row.items()
        }
        for row in rows
    ]


class Neo4jWriter:
    def __init__(
        self,
        driver: AsyncDriver,
        database: str,
        on_retry: Callable[[BaseException], None] | None = None,
        on_written: Callable[[float], None] | None = None,
        written_columns_capacity: int = 0,
    ) -> None:
        self._driver = driver
        self._written = WrittenColumns(written_columns_capacity)
        self._database = database
        self._on_retry = on_retry
        self._on_written = on_written

    async def write(self, events: Sequence[Event], states: Sequence[RunState]) -> None:
        """Write what these events and run summaries say, retrying outages until it lands.

        Raises only Neo4j's refusal of the data itself (a non-retryable client error).
        """
        if not events and not states:
            return
        await self._until_written(
            lambda: self._write_once(events, states), {"events": len(events), "runs": len(states)}
        )

    async def _write_once(self, events: Sequence[Event], states: Sequence[RunState]) -> None:
        started = time.perf_counter()
        async with self._driver.session(database=self._database) as session:
            batch = await session.execute_write(_write_batch, events, states, self._written)
        self._written.remember(batch)
        metrics.NEO4J_WRITE_SECONDS.observe(time.perf_counter() - started)
        metrics.LAST_WRITE.set_to_current_time()
        if self._on_written:
            self._on_written(time.perf_counter() - started)

    async def _until_written(
        self, attempt: Callable[[], Awaitable[None]], context: dict[str, int]
    ) -> None:
        backoff = 0.5
        attempts = 0
        while True:
            attempts += 1
            try:
                await attempt()
                return
            except AuthError as exc:
                raise GraphUnavailable(f"Neo4j refused the credentials: {exc.message}") from exc
            except (ServiceUnavailable, SessionExpired, OSError) as exc:
                reason: BaseException = exc
            except Neo4jError as exc:
                if not exc.is_retryable():
                    raise
                reason = exc
            metrics.NEO4J_RETRIES.inc()
            if self._on_retry:
                self._on_retry(reason)
            log.warning(
                "Neo4j write failed (%s); retrying in %.1f s",
                reason,
                backoff,
                extra={
                    **context,
                    "attempt": attempts,
                    "retryInS": backoff,
                    "reason": type(reason).__name__,
                },
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
