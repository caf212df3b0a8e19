"""Planning a batch while the one before it is written gives the rows sequential writing gives,
whenever the graph's answer arrives and whichever batches Neo4j refuses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage_stream.graph import GraphBatch, build_batch, location_aliases
from lineage_stream.naming import DatasetKey
from lineage_stream.openlineage import Event
from lineage_stream.planning import Plan, WritePlanner, created_aliases
from tests.builders import dataset, parsed, run_event
from tests.strategies import graph_of, run_events

pytestmark = pytest.mark.unit

TABLE = ("hive://m:9083", "db.t1")


@dataclass
class Graph:
    """The aliases Neo4j holds after the batches that landed, and those batches."""

    aliases: dict[str, set[DatasetKey]] = field(default_factory=dict)
    batches: list[GraphBatch] = field(default_factory=list)

    def resolve(self, asked: list[str]) -> dict[str, DatasetKey]:
        return {alias: min(self.aliases[alias]) for alias in asked if alias in self.aliases}

    def land(self, batch: GraphBatch) -> None:
        self.batches.append(batch)
        for alias, key in created_aliases(batch):
            self.aliases.setdefault(alias, set()).add(key)


def prepare(planner: WritePlanner, graph: Graph, events: Sequence[Event]) -> Plan:
    generation = planner.generation
    asked = planner.aliases_to_resolve(events)
    return planner.plan(events, [], set(asked), graph.resolve(asked), generation)


def sequentially(units: list[list[Event]]) -> Graph:
    graph = Graph()
    for events in units:
        graph.land(build_batch(events, [], graph.resolve(location_aliases(events))))
    return graph


def without_columns(batch: GraphBatch) -> GraphBatch:
    return replace(batch, fields=[], derivations=[], column_sets=[])


@dataclass(frozen=True)
class Fate:
    """A batch; whether Neo4j refuses it, and then which of its events; whether the next
    batch's alias lookup already sees it landed; whether the refusal comes before the next
    batch is planned (`plan` runs in a thread, so it may even come during)."""

    events: list[Event]
    refused: bool
    refused_events: list[bool]
    seen_early: bool
    refusal_first: bool


@st.composite
def fates(draw: st.DrawFn) -> Fate:
    events = draw(run_events())
    refused = draw(st.booleans())
    refused_events = [refused and draw(st.booleans()) for _ in events]
    return Fate(events, refused, refused_events, draw(st.booleans()), draw(st.booleans()))


@settings(max_examples=300, deadline=None)
@given(st.lists(fates(), min_size=1, max_size=6), st.sampled_from([0, 2, 1000]))
def test_pipelined_plans_write_what_sequential_batches_write(
    batches: list[Fate], capacity: int
) -> None:
    # Replays the worker's loop: prepare N+1, land N (or write N's events one by one when
    # Neo4j refuses it), refresh N+1, and so on; then compares with writing one at a time.
    planner = WritePlanner(capacity)
    graph = Graph()
    landed_units: list[list[Event]] = []

    def write_each(plan: Plan, fate: Fate) -> None:
        # Neo4jWriter.write_each: nothing else is planned meanwhile.
        planner.refused()
        for event, refused in zip(plan.events, fate.refused_events, strict=True):
            single = prepare(planner, graph, [event])
            if refused:
                planner.refused()
                continue
            graph.land(single.batch)
            planner.done(single)
            landed_units.append([event])

    in_flight: tuple[Plan, Fate] | None = None
    for fate in [*batches, None]:
        if in_flight is not None:
            plan, landing = in_flight
            if landing.refused and landing.refusal_first:
                planner.refused()
            if landing.seen_early and not landing.refused:
                graph.land(plan.batch)
        next_plan = None if fate is None else prepare(planner, graph, fate.events)
        if in_flight is not None:
            plan, landing = in_flight
            if landing.refused:
                if not landing.refusal_first:
                    planner.refused()
                write_each(plan, landing)
            else:
                if not landing.seen_early:
                    graph.land(plan.batch)
                planner.done(plan)
                landed_units.append(list(plan.events))
        if fate is None or next_plan is None:
            break
        if not planner.is_current(next_plan):  # Neo4jWriter.refresh
            planner.done(next_plan)
            next_plan = prepare(planner, graph, next_plan.events)
        in_flight = (next_plan, fate)

    reference = sequentially(landed_units)
    assert [without_columns(b) for b in graph.batches] == [
        without_columns(b) for b in reference.batches
    ]
    assert graph_of(graph.batches) == graph_of(reference.batches)


def test_a_batch_planned_during_a_write_resolves_the_aliases_that_write_creates() -> None:
    table_event = parsed(
        run_event("COMPLETE", outputs=[dataset("hdfs://nn", "/w/t1", symlink=TABLE)])
    )
    by_location = parsed(run_event("START", inputs=[dataset("hdfs://nn", "/w/t1")]))
    planner = WritePlanner(1000)

    in_flight = prepare(planner, Graph(), [table_event])
    planned = prepare(planner, Graph(), [by_location])

    [dataset_row] = planned.batch.datasets
    assert (dataset_row["namespace"], dataset_row["name"]) == TABLE
    planner.done(in_flight)
    assert planner.is_current(planned)


def test_a_refusal_makes_the_batches_planned_on_it_stale() -> None:
    table_event = parsed(
        run_event("COMPLETE", outputs=[dataset("hdfs://nn", "/w/t1", symlink=TABLE)])
    )
    by_location = parsed(run_event("START", inputs=[dataset("hdfs://nn", "/w/t1")]))
    planner = WritePlanner(1000)
    prepare(planner, Graph(), [table_event])
    planned = prepare(planner, Graph(), [by_location])

    planner.refused()

    assert not planner.is_current(planned)
    planner.done(planned)
    [dataset_row] = prepare(planner, Graph(), [by_location]).batch.datasets
    assert (dataset_row["namespace"], dataset_row["name"]) == ("hdfs://nn", "/w/t1")
