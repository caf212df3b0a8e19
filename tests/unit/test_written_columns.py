"""The writer's memory of committed Field and DERIVES rows and of the facets that made them: it
may skip work, never lose a row."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage_stream.graph import GraphBatch, WrittenColumns, build_batch, location_aliases
from lineage_stream.naming import DatasetKey
from lineage_stream.openlineage import Event
from tests.builders import dataset, parsed, run_event
from tests.strategies import graph_of, run_events

pytestmark = pytest.mark.unit


def field_row(dataset: str, field: str) -> dict[str, Any]:
    return {"namespace": "s3://b", "name": dataset, "field": field}


def derivation_row(source: str, target: str, transformations: list[str]) -> dict[str, Any]:
    return {
        "fromNamespace": "s3://b",
        "fromName": "in",
        "fromField": source,
        "toNamespace": "s3://b",
        "toName": "out",
        "toField": target,
        "jobNamespace": "spark",
        "jobName": "job",
        "transformations": transformations,
    }


def batch(fields: list[str], derivations: list[tuple[str, str, list[str]]]) -> GraphBatch:
    return GraphBatch(
        datasets=[{"namespace": "s3://b", "name": "out"}],
        processes=[{"runId": "r"}],
        fields=[field_row("out", f) for f in fields],
        derivations=[derivation_row(s, t, ts) for s, t, ts in derivations],
    )


def test_rows_written_once_are_skipped_and_other_kinds_are_kept() -> None:
    written = WrittenColumns(100)
    first = batch(["a", "b"], [("x", "a", ["DIRECT/IDENTITY"])])
    written.remember(first)

    again = written.unwritten(batch(["a", "b", "c"], [("x", "a", ["DIRECT/IDENTITY"])]))

    assert again.fields == [field_row("out", "c")]
    assert again.derivations == []
    assert again.datasets == first.datasets
    assert again.processes == first.processes


def test_a_derivation_with_a_new_transformation_is_written_again() -> None:
    written = WrittenColumns(100)
    written.remember(batch([], [("x", "a", ["DIRECT/IDENTITY"])]))

    again = written.unwritten(batch([], [("x", "a", ["DIRECT/IDENTITY", "INDIRECT/FILTER"])]))

    assert [row["transformations"] for row in again.derivations] == [
        ["DIRECT/IDENTITY", "INDIRECT/FILTER"]
    ]


def test_the_least_recently_written_rows_are_forgotten_beyond_capacity() -> None:
    written = WrittenColumns(2)
    written.remember(batch(["a", "b"], []))
    written.remember(batch(["a"], []))  # a is now the most recent
    written.remember(batch(["c"], []))

    assert len(written) == 2
    assert [row["field"] for row in written.unwritten(batch(["a", "b", "c"], [])).fields] == ["b"]


def test_capacity_zero_remembers_nothing() -> None:
    written = WrittenColumns(0)
    written.remember(batch(["a"], [("x", "a", [])]))

    assert written.unwritten(batch(["a"], [("x", "a", [])])) == batch(["a"], [("x", "a", [])])


names = st.sampled_from(["a", "b", "c", "d", "e"])
batches = st.lists(
    st.tuples(
        st.lists(names, unique=True),
        st.lists(st.tuples(names, names, st.lists(st.sampled_from(["D", "I"]), unique=True))),
    ),
    max_size=12,
)


@given(batches, st.integers(min_value=0, max_value=6))
def test_every_distinct_row_reaches_neo4j_at_least_once(
    shapes: list[tuple[list[str], list[tuple[str, str, list[str]]]]], capacity: int
) -> None:
    written = WrittenColumns(capacity)
    sent: list[dict[str, Any]] = []
    built: list[dict[str, Any]] = []
    for fields, derivations in shapes:
        full = batch(fields, derivations)
        built += full.fields + full.derivations
        delivered = written.unwritten(full)
        sent += delivered.fields + delivered.derivations
        written.remember(delivered)

    assert {repr(row) for row in built} == {repr(row) for row in sent}


def lineage_event(job: str, output: str, source: tuple[str, str]) -> Event:
    return parsed(
        run_event(
            "COMPLETE",
            job=("spark", job),
            inputs=[dataset(*source, fields=["x"])],
            outputs=[
                dataset(
                    "s3://b",
                    output,
                    fields=["a", "b"],
                    column_lineage={"a": [(*source, "x")], "b": [(*source, "x")]},
                )
            ],
        )
    )


def columns_of(batch: GraphBatch) -> set[tuple[str, ...]]:
    return {(row["name"], row["field"]) for row in batch.fields} | {
        (row["fromName"], row["fromField"], row["toField"], row["jobName"])
        for row in batch.derivations
    }


def test_a_facet_written_before_is_skipped_until_what_it_resolves_to_changes() -> None:
    written = WrittenColumns(100)
    event = lineage_event("job", "out", ("s3://b", "/in"))
    first = written.unwritten(build_batch([event], [], {}, written))
    written.remember(first)
    assert ("/in", "x", "a", "job") in columns_of(first)

    again = build_batch([event], [], {}, written)
    assert (again.fields, again.derivations, again.column_sets) == ([], [], [])
    assert [row["fields"] for row in again.datasets] == [["x"], ["a", "b"]]

    # Another job with the same facet derives the same columns anew.
    other_job = build_batch([lineage_event("other", "out", ("s3://b", "/in"))], [], {}, written)
    assert ("/in", "x", "a", "other") in columns_of(other_job)

    # The input location is since known as an alias of a table: its columns are the table's.
    table = DatasetKey("hive://m", "db.in")
    moved = build_batch([event], [], {"s3://b/in": table}, written)
    assert ("db.in", "x", "a", "job") in columns_of(moved)


def test_capacity_zero_skips_no_facet() -> None:
    written = WrittenColumns(0)
    event = lineage_event("job", "out", ("s3://b", "/in"))
    written.remember(build_batch([event], [], {}, written))

    assert columns_of(build_batch([event], [], {}, written)) == columns_of(build_batch([event], []))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(run_events(), st.booleans()), min_size=1, max_size=6),
    st.sampled_from([0, 1, 3, 1000]),
)
def test_with_the_cache_neo4j_ends_up_with_the_same_columns_and_datasets(
    batches: list[tuple[list[Event], bool]], capacity: int
) -> None:
    # Between batches the graph may learn that s3://b/in is a table's location.
    table = {"s3://b/in": DatasetKey("hive://m:9083", "db.in")}
    written = WrittenColumns(capacity)
    plain, cached = [], []
    for events, learned in batches:
        known = table if learned else {}
        reference = build_batch(events, [], known)
        assert location_aliases(events, written) == location_aliases(events)
        delivered = written.unwritten(build_batch(events, [], known, written))
        written.remember(delivered)
        assert delivered.datasets == reference.datasets
        assert delivered.jobs == reference.jobs
        plain.append(reference)
        cached.append(delivered)

    assert graph_of(cached) == graph_of(plain)
