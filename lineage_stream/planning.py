"""Plans graph batches ahead of the writes still in flight, as if those writes had landed.

The worker builds batch N+1's rows while Neo4j writes batch N. Built one after the other, N+1
would see what N wrote: the aliases N's tables gave their locations (when several datasets share
an alias the graph answers with the least key, see `cypher.RESOLVE_ALIASES`) and the Field and
DERIVES rows N holds (`WrittenColumns`). A plan therefore counts the pending batches' aliases as
known and their rows as written. When Neo4j refuses a pending batch those assumptions are void:
`refused` forgets them and marks every earlier plan stale, to be planned again. Pure: no Neo4j.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from lineage_stream.graph import (
    GraphBatch,
    WrittenColumns,
    build_batch,
    least_keys,
    location_aliases,
)
from lineage_stream.naming import DatasetKey
from lineage_stream.openlineage import Event
from lineage_stream.pairing import RunState


@dataclass(frozen=True, slots=True, eq=False)
class Plan:
    events: Sequence[Event]
    states: Sequence[RunState]
    batch: GraphBatch
    number: int
    generation: int


def created_aliases(batch: GraphBatch) -> Iterable[tuple[str, DatasetKey]]:
    """The (alias, dataset) pairs the batch's UPSERT_DATASETS statement links."""
    for row in batch.datasets:
        key = DatasetKey(row["namespace"], row["name"])
        for alias in row["aliases"]:
            yield alias, key


class WritePlanner:
    """Builds batches in order and tracks which of them are planned but not yet landed.

    `plan` may run in a worker thread while the event loop calls `done` or `refused`: it reads
    the pending batches once, at its start (a dict read or write is atomic), and counts only
    those of its own generation, so a batch it adds after a refusal misleads no later plan.
    Plans must not run concurrently with each other; the writer serialises them.
    """

    def __init__(self, written_columns_capacity: int) -> None:
        self._capacity = written_columns_capacity
        self._written = WrittenColumns(written_columns_capacity)
        # plan number -> (generation it was planned in, batch)
        self._pending: dict[int, tuple[int, GraphBatch]] = {}
        self._numbers = itertools.count()
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def aliases_to_resolve(self, events: Iterable[Event]) -> list[str]:
        """The aliases to look up in the graph before planning these events."""
        return location_aliases(events, self._written)

    def plan(
        self,
        events: Sequence[Event],
        states: Sequence[RunState],
        asked: Collection[str],
        resolved: Mapping[str, DatasetKey],
        generation: int,
    ) -> Plan:
        """Build the batch, given what the graph answered (at `generation`) for the aliases
        `aliases_to_resolve` asked."""
        written = self._written
        pending = [
            batch for made_in, batch in list(self._pending.values()) if made_in == generation
        ]
        landing = (
            (alias, key)
            for batch in pending
            for alias, key in created_aliases(batch)
            if alias in asked
        )
        known = least_keys([*resolved.items(), *landing])
        batch = written.unwritten(build_batch(events, states, known, written))
        number = next(self._numbers)
        if generation == self._generation:
            written.remember(batch)
            self._pending[number] = (generation, batch)
        return Plan(events, states, batch, number, generation)

    def is_current(self, plan: Plan) -> bool:
        """False when a batch it counted on was refused since: plan it again."""
        return plan.generation == self._generation

    def done(self, plan: Plan) -> None:
        """The plan landed, or was replaced by a new plan of the same events."""
        self._pending.pop(plan.number, None)

    def refused(self) -> None:
        """Neo4j refused a batch: forget what the pending batches were counted on to write."""
        self._generation += 1
        self._pending.clear()
        self._written = WrittenColumns(self._capacity)
