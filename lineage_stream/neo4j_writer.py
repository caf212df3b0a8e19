"""Writes graph batches to Neo4j: one transaction per batch, one UNWIND statement per kind.

A deadlock victim is retried at once; other transient failures (leader switches) and outages
are retried here with capped backoff until Neo4j is back, which holds the worker's batch and so
pauses consumption: nothing is skipped.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, TypeVar

from neo4j import AsyncDriver, AsyncManagedTransaction, AsyncTransaction
from neo4j.exceptions import (
    AuthError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
    TransientError,
)

from lineage_stream import cypher, metrics
from lineage_stream.errors import GraphUnavailable
from lineage_stream.graph import GraphBatch, Row
from lineage_stream.naming import DatasetKey
from lineage_stream.openlineage import Event
from lineage_stream.pairing import RunState
from lineage_stream.planning import Plan, WritePlanner

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0
DEADLOCK = "Neo.TransientError.Transaction.DeadlockDetected"
# Then the write fails like any transient error and is retried with back-off (_until_written).
MAX_DEADLOCK_RETRIES = 20
DEADLOCK_JITTER_S = 0.02
_Result = TypeVar("_Result")


class Parameter(list[Any]):
    """A list parameter whose repr is its length.

    The driver formats every statement's parameters for a debug log line before it asks whether
    anything logs at debug: for a batch's rows, 6% of the worker's busy time (py-spy;
    docs/performance.md, levers). It packs a list subclass as a list.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} items>"


async def _resolve_aliases(
    tx: AsyncManagedTransaction, aliases: list[str]
) -> dict[str, DatasetKey]:
    result = await tx.run(cypher.RESOLVE_ALIASES, aliases=Parameter(aliases))
    # Rows come least key last for each alias: the graph's answer is the least key.
    return {
        record["alias"]: DatasetKey(record["namespace"], record["name"]) async for record in result
    }


async def _run_statements(
    tx: AsyncManagedTransaction | AsyncTransaction, statements: list[tuple[str, dict[str, Any]]]
) -> None:
    for statement, parameters in statements:
        await (await tx.run(statement, parameters)).consume()


def statements(batch: GraphBatch) -> list[tuple[str, dict[str, Any]]]:
    """The statements that write one batch, nodes before the edges that match them.

    Each statement's rows are sorted by the nodes they lock, hot ones (datasets, jobs) first,
    so concurrent workers take a statement's locks in one order. Deadlocks remain possible
    (plans MERGE in one pass and SET in another, and a batch's statements lock datasets in
    turn); `_write_once` retries them.
    """
    steps = (
        (cypher.UPSERT_JOBS, batch.jobs, ("namespace", "name")),
        (cypher.UPSERT_DATASETS, batch.datasets, ("namespace", "name")),
        (
            cypher.MERGE_LOCATION_NODES,
            [row for row in batch.datasets if row["locations"]],
            ("namespace", "name"),
        ),
        (cypher.UPSERT_PROCESSES, batch.processes, ("jobNamespace", "jobName", "runId")),
        # Only runs with a parent: Neo4j would otherwise lock-seek every run before filtering.
        (
            cypher.LINK_PARENTS,
            [row for row in batch.processes if row["parentRunId"]],
            ("parentRunId", "runId"),
        ),
        (cypher.LINK_RUN_INPUTS, batch.run_inputs, ("namespace", "name", "runId")),
        (cypher.LINK_RUN_OUTPUTS, batch.run_outputs, ("namespace", "name", "runId")),
        (cypher.UPDATE_LAST_WRITTEN, batch.last_writes(), ("namespace", "name")),
        (cypher.UPDATE_JOB_LAST_RUN, batch.job_last_runs(), ("jobNamespace", "jobName")),
        (cypher.LINK_JOB_INPUTS, batch.job_inputs, _DATASET_THEN_JOB),
        (cypher.LINK_JOB_OUTPUTS, batch.job_outputs, _DATASET_THEN_JOB),
        (cypher.UPSERT_FIELDS, batch.fields, ("namespace", "name", "field")),
        (cypher.LINK_DERIVATIONS, batch.derivations, _TARGET_THEN_SOURCE),
    )
    found: list[tuple[str, dict[str, Any]]] = [
        (
            statement,
            {"rows": Parameter(_as_wire(statement, sorted(rows, key=itemgetter(*lock_order))))},
        )
        for statement, rows, lock_order in steps
        if rows
    ]
    parents = sorted({row["parentRunId"] for row in batch.processes if row["parentRunId"]})
    if parents:
        found.append((cypher.COUNT_FAILED_CHILDREN, {"parentRunIds": Parameter(parents)}))
    return found


_DATASET_THEN_JOB = ("namespace", "name", "jobNamespace", "jobName")
_TARGET_THEN_SOURCE = (
    "toNamespace",
    "toName",
    "toField",
    "fromNamespace",
    "fromName",
    "fromField",
)


def _as_wire(statement: str, rows: list[Row]) -> list[Row]:
    """Rows as the statement reads them: only the keys it reads, less for the driver to encode,
    and its timestamps as ISO-8601 text (see `cypher._rows_with_times`)."""
    keys, times = _read_by(statement)
    if not times and rows and rows[0].keys() == set(keys):
        return rows  # a kind's rows share their keys
    wire = []
    # A batch's rows share a few hundred event times. Every time is UTC by now
    # (`openlineage._as_utc`), so equal times print alike.
    texts: dict[datetime, str] = {}
    for row in rows:
        sent = {key: row[key] for key in keys if key in row}
        for key in times:
            at = sent.get(key)
            if at is not None:
                text = texts.get(at)
                if text is None:
                    text = texts[at] = at.isoformat()
                sent[key] = text
        wire.append(sent)
    return wire


@functools.cache
def _read_by(statement: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The row keys a write statement reads, and those of them it parses as timestamps."""
    return tuple(dict.fromkeys(_READ.findall(statement))), tuple(_PARSED_TIME.findall(statement))


_READ = re.compile(r"\b(?:row|wire)\.(\w+)")
_PARSED_TIME = re.compile(r"datetime\(wire\.(\w+)\)")


@dataclass(frozen=True, slots=True, eq=False)
class PreparedWrite:
    plan: Plan
    statements: list[tuple[str, dict[str, Any]]]


class Neo4jWriter:
    """Prepares batches (rows built in a worker thread, off the event loop) and commits them.

    A batch may be prepared while the one before it is being committed, so Python builds rows
    while Neo4j writes; prepare and commit batches in the same order (see `planning`).
    """

    def __init__(
        self,
        driver: AsyncDriver,
        database: str,
        on_retry: Callable[[BaseException], None] | None = None,
        on_written: Callable[[float], None] | None = None,
        written_columns_capacity: int = 0,
    ) -> None:
        self._driver = driver
        self._planner = WritePlanner(written_columns_capacity)
        self._planning = asyncio.Lock()
        self._database = database
        self._on_retry = on_retry
        self._on_written = on_written

    async def write(self, events: Sequence[Event], states: Sequence[RunState]) -> None:
        """Write what these events and run summaries say, retrying outages until it lands.

        Raises only Neo4j's refusal of the data itself (a non-retryable client error).
        """
        if not events and not states:
            return
        await self.commit(await self.prepare(events, states))

    async def prepare(self, events: Sequence[Event], states: Sequence[RunState]) -> PreparedWrite:
        async with self._planning:
            return await self._prepare(events, states)

    async def refresh(self, prepared: PreparedWrite) -> PreparedWrite:
        """The batch prepared again if a batch it counted on was refused since, else itself.

        Call it before committing, once the batches before it are committed, and before
        preparing the next: a batch prepared after a stale one must not count on it.
        """
        if self._planner.is_current(prepared.plan):
            return prepared
        self._planner.done(prepared.plan)
        return await self.prepare(prepared.plan.events, prepared.plan.states)

    async def commit(self, prepared: PreparedWrite) -> None:
        """Write a prepared batch, retrying outages until it lands; raises as `write` does."""
        await self._commit(await self.refresh(prepared))

    async def write_each(
        self, items: Sequence[tuple[Sequence[Event], Sequence[RunState]]]
    ) -> list[Neo4jError | None]:
        """Write item by item, with nothing prepared meanwhile; each item's refusal or None.

        For finding the events of a refused batch that Neo4j refuses: batches prepared since
        counted on the refused one and are prepared again when committed.
        """
        refusals: list[Neo4jError | None] = []
        async with self._planning:
            self._planner.refused()
            for events, states in items:
                try:
                    await self._commit(await self._prepare(events, states))
                    refusals.append(None)
                except Neo4jError as exc:
                    refusals.append(exc)
        return refusals

    async def _prepare(self, events: Sequence[Event], states: Sequence[RunState]) -> PreparedWrite:
        generation = self._planner.generation
        aliases = await asyncio.to_thread(self._planner.aliases_to_resolve, events)
        resolved: dict[str, DatasetKey] = {}
        if aliases:
            resolved = await self._until_written(
                lambda: self._resolve(aliases), {"aliases": len(aliases)}
            )
        return await asyncio.to_thread(
            self._plan, events, states, frozenset(aliases), resolved, generation
        )

    def _plan(
        self,
        events: Sequence[Event],
        states: Sequence[RunState],
        asked: frozenset[str],
        resolved: dict[str, DatasetKey],
        generation: int,
    ) -> PreparedWrite:
        plan = self._planner.plan(events, states, asked, resolved, generation)
        return PreparedWrite(plan, statements(plan.batch))

    async def _resolve(self, aliases: list[str]) -> dict[str, DatasetKey]:
        # A write session reads from the cluster's leader, which holds every batch landed.
        async with self._driver.session(database=self._database) as session:
            return await session.execute_write(_resolve_aliases, aliases)

    async def _commit(self, prepared: PreparedWrite) -> None:
        plan = prepared.plan
        try:
            if prepared.statements:
                await self._until_written(
                    lambda: self._write_once(prepared.statements),
                    {"events": len(plan.events), "runs": len(plan.states)},
                )
        except BaseException:
            self._planner.refused()
            raise
        self._planner.done(plan)

    async def _write_once(self, statements: list[tuple[str, dict[str, Any]]]) -> None:
        """One transaction; a deadlock victim is retried at once.

        Workers whose batches share datasets deadlock now and then. The driver's managed
        transactions would wait a second or more before each retry, a pause meant for cluster
        fail-overs: a deadlock only needs the other transaction to go first.
        """
        started = time.perf_counter()
        async with self._driver.session(database=self._database) as session:
            for attempt in itertools.count(1):
                try:
                    async with await session.begin_transaction() as tx:
                        await _run_statements(tx, statements)
                        await tx.commit()
                    break
                except TransientError as exc:
                    if exc.code != DEADLOCK or attempt > MAX_DEADLOCK_RETRIES:
                        raise
                    metrics.NEO4J_DEADLOCKS.inc()
                    log.debug("deadlock victim, retrying (attempt %d): %s", attempt, exc.message)
                    await asyncio.sleep(random.uniform(0, DEADLOCK_JITTER_S * attempt))
        metrics.NEO4J_WRITE_SECONDS.observe(time.perf_counter() - started)
        metrics.LAST_WRITE.set_to_current_time()
        if self._on_written:
            self._on_written(time.perf_counter() - started)

    async def _until_written(
        self, attempt: Callable[[], Awaitable[_Result]], context: dict[str, int]
    ) -> _Result:
        backoff = 0.5
        attempts = 0
        while True:
            attempts += 1
            try:
                return await attempt()
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
