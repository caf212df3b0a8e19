"""Hypothesis strategies of OpenLineage events over a small pool of datasets, so that batches
share datasets, fields and column-lineage facets the way a fleet's runs do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from lineage_stream.graph import GraphBatch
from lineage_stream.openlineage import Event
from tests.builders import dataset, parsed, run_event

T0 = datetime(2024, 1, 1, tzinfo=UTC)

_POOL = [
    ("s3a://b", "/in/", None),
    ("s3://b", "/in", None),
    ("hdfs://nn", "/w/t1", ("hive://m:9083", "db.t1")),
    ("hdfs://nn", "/w/t1", None),  # the same table, named by its location only
    ("hdfs://nn", "/w/t1", ("hive://m:9083", "db.t1_view")),  # two tables on one location
    ("hdfs://nn", "/w/t2/", ("hive://m:9083", "db.t2")),
    ("gs://g", "copied.csv", None),
]
_FIELDS = [None, ["a"], ["a", "b"], ["b", "c"]]


@st.composite
def lineage_dataset(draw: st.DrawFn, output: bool) -> dict[str, Any]:
    ns, name, symlink = draw(st.sampled_from(_POOL))
    lineage = None
    if output and draw(st.booleans()):
        src_ns, src_name, _ = draw(st.sampled_from(_POOL))
        lineage = {
            draw(st.sampled_from(["a", "b"])): [(src_ns, src_name, draw(st.sampled_from("abc")))]
        }
    stats = None
    if output and draw(st.booleans()):
        stats = (draw(st.integers(0, 9)), draw(st.integers(0, 99)))
    return dataset(
        ns, name, fields=draw(st.sampled_from(_FIELDS)), symlink=symlink,
        column_lineage=lineage, stats=stats,
    )  # fmt: skip


@st.composite
def run_events(draw: st.DrawFn) -> list[Event]:
    seconds = draw(st.lists(st.integers(0, 500), min_size=1, max_size=6, unique=True))
    events = []
    for second in seconds:
        doc = run_event(
            draw(st.sampled_from(["START", "RUNNING", "COMPLETE", "FAIL", None])),
            at=(T0 + timedelta(seconds=second)).isoformat(),
            inputs=draw(st.lists(lineage_dataset(False), max_size=2)),
            outputs=draw(st.lists(lineage_dataset(True), max_size=2)),
            job_type=draw(st.sampled_from([None, "SQL_JOB", "RDD_JOB"])),
        )
        if draw(st.booleans()):
            doc["job"]["facets"]["sql"] = {"query": draw(st.sampled_from(["select 1", "select 2"]))}
        events.append(parsed(doc))
    return events


def graph_of(batches: list[GraphBatch]) -> tuple[set[str], dict[str, set[str]]]:
    """Fields and DERIVES edges as Neo4j ends up holding them (transformations are merged)."""
    fields = {repr(sorted(row.items())) for batch in batches for row in batch.fields}
    derivations: dict[str, set[str]] = {}
    for batch in batches:
        for row in batch.derivations:
            key = repr(sorted((k, v) for k, v in row.items() if k != "transformations"))
            derivations.setdefault(key, set()).update(row["transformations"])
    return fields, derivations
