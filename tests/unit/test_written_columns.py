"""The writer's memory of committed Field and DERIVES rows: it may skip work, never lose a row."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lineage_stream.graph import GraphBatch, WrittenColumns

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
