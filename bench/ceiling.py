"""The ceiling: lineage-stream's own graph writes replayed straight into Neo4j.

Events are parsed, paired and turned into rows ahead of time (untimed), in the worker's batch
size; then each batch is one transaction of the worker's UNWIND statements, back to back. No
Kafka, no parsing, no pairing: the fastest this Neo4j absorbs exactly the writes the worker makes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from neo4j import Driver, ManagedTransaction

from lineage_stream.graph import least_keys
from lineage_stream.naming import DatasetKey
from lineage_stream.neo4j_writer import statements
from lineage_stream.openlineage import Event, RunEvent, parse
from lineage_stream.pairing import RunState, fold
from lineage_stream.planning import WritePlanner, created_aliases
from lineage_stream.settings import Settings

# The worker's defaults, whatever the environment says.
MAX_EVENT_BYTES: int = Settings.model_fields["max_event_bytes"].default
WRITTEN_COLUMNS_CACHE: int = Settings.model_fields["written_columns_cache"].default


@dataclass(frozen=True)
class PreparedBatch:
    statements: list[tuple[str, dict[str, Any]]]


class Preparer:
    """Rows of every batch, as the worker would build them from these events in this order.

    The worker's planner builds them; the graph's answers for aliases are those of the datasets
    written by earlier batches, as the worker would find them. Successive calls continue the same
    stream, so a fleet can be prepared part untimed, part timed.
    """

    def __init__(self, batch_size: int) -> None:
        self._batch_size = batch_size
        self._planner = WritePlanner(WRITTEN_COLUMNS_CACHE)
        self._graph_aliases: dict[str, DatasetKey] = {}
        self._states: dict[str, RunState] = {}

    def prepare(self, values: Iterable[bytes]) -> list[PreparedBatch]:
        planner = self._planner
        prepared = []
        for events, touched in batches(values, self._batch_size, self._states):
            asked = planner.aliases_to_resolve(events)
            known = self._graph_aliases
            resolved = {alias: known[alias] for alias in asked if alias in known}
            plan = planner.plan(events, touched, set(asked), resolved, planner.generation)
            planner.done(plan)
            self._graph_aliases = least_keys([*known.items(), *created_aliases(plan.batch)])
            prepared.append(PreparedBatch(statements(plan.batch)))
        return prepared


def prepare(values: Iterable[bytes], batch_size: int) -> list[PreparedBatch]:
    """Every batch of these events, from an empty graph (see `Preparer`)."""
    return Preparer(batch_size).prepare(values)


def batches(
    values: Iterable[bytes], batch_size: int, states: dict[str, RunState] | None = None
) -> Iterator[tuple[list[Event], list[RunState]]]:
    """The events of each batch, parsed, with the summaries of the runs it touched, folded
    with those of the batches before it (`states`, updated), as the worker's pairing table
    holds them."""
    now = datetime.now(UTC)
    states = {} if states is None else states
    for chunk in _chunks(list(values), batch_size):
        events = [parse(raw, max_bytes=MAX_EVENT_BYTES, now=now) for raw in chunk]
        touched: dict[str, RunState] = {}
        for event in events:
            if isinstance(event, RunEvent):
                run_id = str(event.run.run_id)
                touched[run_id] = fold(touched.get(run_id) or states.get(run_id), event)
        states.update(touched)
        yield events, list(touched.values())


def _chunks(values: Sequence[bytes], size: int) -> Iterable[Sequence[bytes]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _write(tx: ManagedTransaction, batch: PreparedBatch) -> None:
    for statement, parameters in batch.statements:
        tx.run(statement, parameters).consume()


def replay(driver: Driver, batches: Sequence[PreparedBatch], database: str = "neo4j") -> float:
    """Write every batch, one transaction each; returns the seconds it took."""
    started = time.perf_counter()
    with driver.session(database=database) as session:
        for batch in batches:
            session.execute_write(_write, batch)
    return time.perf_counter() - started
