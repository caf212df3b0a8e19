from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage_stream.graph import GraphBatch, build_batch, location_aliases, process_row
from lineage_stream.naming import DatasetKey
from lineage_stream.openlineage import Event, JobEvent, RunEvent
from lineage_stream.pairing import RunState, fold, summarize
from tests.builders import (
    RUN_ID,
    dataproc,
    dataset,
    parse_sample,
    parsed,
    run_event,
)
from tests.strategies import run_events

pytestmark = pytest.mark.unit

HIVE = "hive://dataproc-producer-test-m:9083"
HDFS = "hdfs://dataproc-producer-test-m"
INSERT_RUN = "019299c5-73cf-7069-a70f-74eb8070b577"
INSERT_JOB = "cl_i_test_application.execute_insert_into_hive_table.warehouse_t2"
APP_RUN = "019299c5-12f5-7946-b5b2-c6abab662e20"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def utc(second: int, millis: int) -> datetime:
    return datetime(2024, 10, 17, 9, 18, second, millis * 1000, tzinfo=UTC)


AT_11, AT_13, AT_14 = utc(26, 825), utc(28, 643), utc(29, 267)


def by_key(rows: list[dict[str, Any]], *keys: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    index = {tuple(row[k] for k in keys): row for row in rows}
    assert len(index) == len(rows), "a key appears twice in one batch"
    return index


@pytest.fixture(scope="module")
def insert_batch() -> GraphBatch:
    events = [dataproc(n) for n in range(11, 15)]
    state: RunState | None = None
    for event in events:
        assert isinstance(event, RunEvent)
        state = fold(state, event)
    assert state is not None
    return build_batch(events, [state])


def test_datasets_are_keyed_by_table_identity(insert_batch: GraphBatch) -> None:
    datasets = by_key(insert_batch.datasets, "namespace", "name")
    assert set(datasets) == {(HIVE, "default.t1"), (HIVE, "default.t2")}
    for table in ("t1", "t2"):
        row = datasets[(HIVE, f"default.{table}")]
        assert row["aliases"] == [f"{HDFS}/user/hive/warehouse/{table}"]
        assert row["locations"] == [{"namespace": HDFS, "name": f"/user/hive/warehouse/{table}"}]
        assert row["fields"] == ["a", "b"]
        assert row["fieldTypes"] == ["integer", "string"]
        assert row["schemaAt"] == AT_14
        assert row["dataSource"] == HDFS


def test_run_edges(insert_batch: GraphBatch) -> None:
    assert insert_batch.run_inputs == [
        {"runId": INSERT_RUN, "namespace": HIVE, "name": "default.t1"}
    ]
    assert insert_batch.run_outputs == [
        {
            "runId": INSERT_RUN,
            "namespace": HIVE,
            "name": "default.t2",
            "at": AT_14,
            "rowCount": 2,
            "bytes": 8,
            "statsAt": AT_13,
        }
    ]


def test_job_edges_first_and_last_seen(insert_batch: GraphBatch) -> None:
    for edges, table in ((insert_batch.job_inputs, "t1"), (insert_batch.job_outputs, "t2")):
        assert edges == [
            {
                "jobNamespace": "default",
                "jobName": INSERT_JOB,
                "namespace": HIVE,
                "name": f"default.{table}",
                "firstSeenAt": AT_11,
                "lastSeenAt": AT_14,
                "lastRunId": INSERT_RUN,
            }
        ]


def test_job_row(insert_batch: GraphBatch) -> None:
    [job] = insert_batch.jobs
    assert (job["namespace"], job["name"]) == ("default", INSERT_JOB)
    assert (job["type"], job["integration"], job["processingType"]) == ("SQL_JOB", "SPARK", "BATCH")
    assert job["sql"] == "CREATE TABLE IF NOT EXISTS t2 AS SELECT * FROM t1;"
    assert job["sqlAt"] == AT_14
    assert job["description"] is None
    assert job["descriptionAt"] is None


def test_fields_from_schema(insert_batch: GraphBatch) -> None:
    assert sorted((r["namespace"], r["name"], r["field"]) for r in insert_batch.fields) == [
        (HIVE, "default.t1", "a"),
        (HIVE, "default.t1", "b"),
        (HIVE, "default.t2", "a"),
        (HIVE, "default.t2", "b"),
    ]


def test_derivations_resolve_physical_location_to_table_key(insert_batch: GraphBatch) -> None:
    rows = sorted(insert_batch.derivations, key=lambda r: r["fromField"])
    assert rows == [
        {
            "fromNamespace": HIVE,
            "fromName": "default.t1",
            "fromField": column,
            "toNamespace": HIVE,
            "toName": "default.t2",
            "toField": column,
            "jobNamespace": "default",
            "jobName": INSERT_JOB,
            "transformations": ["DIRECT/IDENTITY"],
        }
        for column in ("a", "b")
    ]


def test_process_row_of_the_insert_run(insert_batch: GraphBatch) -> None:
    [row] = insert_batch.processes
    assert row["runId"] == INSERT_RUN
    assert row["state"] == "COMPLETE"
    assert row["rank"] == 1
    assert row["startedAt"] == AT_11
    assert row["endedAt"] == AT_14
    assert row["runAt"] == AT_11
    assert row["parentRunId"] == APP_RUN
    assert (row["parentJobNamespace"], row["parentJobName"]) == ("default", "cl_i_test_application")
    assert row["type"] == "SQL_JOB"
    assert row["sparkVersion"] == "3.5.1"


def test_table_keyed_datasets_need_no_alias_lookup() -> None:
    aliases = location_aliases([dataproc(n) for n in range(11, 15)])
    assert f"{HDFS}/user/hive/warehouse/t1" not in aliases
    assert f"{HDFS}/user/hive/warehouse/t2" not in aliases


def test_statistics_of_the_first_insert_come_from_event_8() -> None:
    batch = build_batch([dataproc(n) for n in range(6, 10)], [])
    [row] = batch.run_outputs
    assert (row["rowCount"], row["bytes"]) == (2, 8)
    assert row["statsAt"] == utc(23, 813)
    assert row["at"] == utc(25, 647)
    assert batch.run_inputs == []
    assert batch.job_inputs == []


def test_one_dataset_is_coalesced_across_events_and_roles() -> None:
    early = parsed(
        run_event(
            "START",
            at="2024-01-01T00:00:00Z",
            inputs=[dataset("s3a://b", "/raw/", fields=["x"])],
            outputs=[dataset("s3://b", "/out", symlink=("glue", "db.out"))],
        )
    )
    late = parsed(
        run_event(
            "COMPLETE",
            at="2024-01-01T00:01:00Z",
            outputs=[dataset("s3a://b", "/out/", symlink=("glue", "db.out"), fields=["y", "z"])],
            inputs=[dataset("s3://b", "/raw", fields=["x", "w"])],
        )
    )
    datasets = by_key(build_batch([late, early], []).datasets, "namespace", "name")
    assert set(datasets) == {("s3://b", "/raw"), ("glue", "db.out")}
    raw = datasets[("s3://b", "/raw")]
    assert raw["fields"] == ["x", "w"]
    assert raw["aliases"] == []
    out = datasets[("glue", "db.out")]
    assert out["aliases"] == ["s3://b/out"]
    assert out["locations"] == [{"namespace": "s3://b", "name": "/out"}]
    assert out["fields"] == ["y", "z"]
    assert out["schemaAt"] == datetime(2024, 1, 1, 0, 1, tzinfo=UTC)


def test_later_schema_wins_whatever_the_batch_order() -> None:
    new = parsed(run_event(at="2024-01-02T00:00:00Z", outputs=[dataset("n", "t", fields=["new"])]))
    old = parsed(run_event(at="2024-01-01T00:00:00Z", outputs=[dataset("n", "t", fields=["old"])]))
    bare = parsed(run_event(at="2024-01-03T00:00:00Z", outputs=[dataset("n", "t")]))
    for order in ([new, old, bare], [old, bare, new], [bare, old, new]):
        [row] = build_batch(order, []).datasets
        assert row["fields"] == ["new"]


def test_column_lineage_from_a_dataset_absent_from_inputs() -> None:
    event = parse_sample("datahub/databricks_mergeinto_start_event.json")
    batch = build_batch([event], [])
    table = ("dbfs:/demo-warehouse/document", "documentraw.document")
    derivations = by_key(
        batch.derivations,
        "fromNamespace",
        "fromName",
        "fromField",
        "toNamespace",
        "toName",
        "toField",
    )
    stage = ("dbfs", "/demo-warehouse/documentstage")
    assert (*stage, "DocName", *table, "DocName") in derivations
    assert (*table, "DocYear", *table, "DocYear") in derivations
    assert (*stage, "DocYear", *table, "DocYear") in derivations
    assert ("dbfs", "/demo-warehouse/document", "DocYear", *table, "DocYear") not in derivations
    merge = parse_sample("datahub/databricks_mergeinto_start_event.json")
    assert "dbfs/demo-warehouse/documentstage" in location_aliases([merge])
    fields = {(r["namespace"], r["name"], r["field"]) for r in batch.fields}
    assert (*stage, "DocName") in fields
    datasets = by_key(batch.datasets, "namespace", "name")
    assert set(datasets) == {table}
    assert datasets[table]["aliases"] == ["dbfs/demo-warehouse/document"]


def test_known_aliases_rewrite_location_keys() -> None:
    merge = parse_sample("datahub/databricks_mergeinto_start_event.json")
    batch = build_batch([merge], [])
    target = DatasetKey("hive://m:9083", "stage.documentstage")
    resolved = build_batch([merge], [], {"dbfs/demo-warehouse/documentstage": target})
    sources = {(r["fromNamespace"], r["fromName"]) for r in resolved.derivations}
    assert ("dbfs", "/demo-warehouse/documentstage") not in sources
    assert ("hive://m:9083", "stage.documentstage") in sources
    fields = {(r["namespace"], r["name"], r["field"]) for r in resolved.fields}
    assert ("hive://m:9083", "stage.documentstage", "DocName") in fields
    assert ("dbfs", "/demo-warehouse/documentstage", "DocName") not in fields
    # Without the known alias the physical location stays the key.
    assert ("dbfs", "/demo-warehouse/documentstage") in {
        (r["fromNamespace"], r["fromName"]) for r in batch.derivations
    }


def test_known_aliases_move_location_keyed_dataset_and_edges() -> None:
    event = parsed(
        run_event(
            "COMPLETE",
            inputs=[dataset("s3a://b", "/raw/", fields=["x"])],
            outputs=[dataset("gs://c", "/out")],
        )
    )
    assert location_aliases([event]) == ["gs://c/out", "s3://b/raw"]
    table = DatasetKey("glue", "db.raw")
    resolved = build_batch([event], [], {"s3://b/raw": table})
    assert {(r["namespace"], r["name"]) for r in resolved.datasets} == {
        ("glue", "db.raw"),
        ("gs://c", "/out"),
    }
    assert resolved.run_inputs == [{"runId": RUN_ID, "namespace": "glue", "name": "db.raw"}]
    assert [(r["namespace"], r["name"]) for r in resolved.job_inputs] == [("glue", "db.raw")]
    assert [(r["namespace"], r["name"]) for r in resolved.job_outputs] == [("gs://c", "/out")]


@pytest.mark.parametrize("location_first", [True, False])
def test_location_named_by_a_table_in_the_same_batch_resolves_to_the_table(
    location_first: bool,
) -> None:
    """openlineage-spark's CTAS names its output by table; the insert command under it names
    the same directory only by location. In one batch both must reach the table's node."""
    warehouse = "/w/warehouse"
    ctas = parsed(
        run_event(
            "START",
            run_id="01a21058-0dd8-7000-8000-000000000001",
            inputs=[dataset("file", "/w/in")],
            outputs=[
                dataset(
                    "file",
                    f"{warehouse}/orders",
                    fields=["id"],
                    symlink=(f"file:{warehouse}", "default.orders"),
                )
            ],
        )
    )
    insert = parsed(
        run_event(
            "COMPLETE",
            run_id="01a21058-0eb4-7000-8000-000000000002",
            inputs=[dataset("file", "/w/in", fields=["id"])],
            outputs=[
                dataset(
                    "file",
                    f"{warehouse}/orders",
                    fields=["id"],
                    column_lineage={"id": [("file", "/w/in", "id")]},
                )
            ],
        )
    )
    events = [insert, ctas] if location_first else [ctas, insert]
    batch = build_batch(events, [])
    table = ("file:/w/warehouse", "default.orders")
    keys = {(r["namespace"], r["name"]) for r in batch.datasets}
    assert keys == {("file", "/w/in"), table}
    assert {(r["runId"], r["namespace"], r["name"]) for r in batch.run_outputs} == {
        ("01a21058-0dd8-7000-8000-000000000001", *table),
        ("01a21058-0eb4-7000-8000-000000000002", *table),
    }
    assert {(r["toNamespace"], r["toName"]) for r in batch.derivations} == {table}


@pytest.mark.parametrize("location_first", [True, False])
def test_known_aliases_keep_table_aliases_whatever_the_row_order(location_first: bool) -> None:
    """A location-keyed row that resolves onto a table row already in the batch must not wipe
    the table row's aliases and locations, whichever of the two rows comes first."""
    location = parsed(
        run_event(at="2024-01-01T00:00:00Z", inputs=[dataset("s3://b", "/raw", fields=["x"])])
    )
    table = parsed(
        run_event(
            at="2024-01-01T00:00:01Z",
            inputs=[dataset("s3://b", "/raw", symlink=("glue", "db.raw"), fields=["x"])],
        )
    )
    events = [location, table] if location_first else [table, location]
    resolved = build_batch(events, [], {"s3://b/raw": DatasetKey("glue", "db.raw")})
    [row] = resolved.datasets
    assert (row["namespace"], row["name"]) == ("glue", "db.raw")
    assert row["aliases"] == ["s3://b/raw"]
    assert row["locations"] == [{"namespace": "s3://b", "name": "/raw"}]


def test_known_aliases_keep_one_row_per_key() -> None:
    """The batch contract: after rewriting, each key still appears once per list."""
    location = parsed(
        run_event(at="2024-01-01T00:00:00Z", inputs=[dataset("s3://b", "/raw", fields=["x"])])
    )
    table = parsed(
        run_event(
            at="2024-01-01T00:00:01Z",
            inputs=[dataset("s3://b", "/raw", symlink=("glue", "db.raw"), fields=["x"])],
        )
    )
    resolved = build_batch([location, table], [], {"s3://b/raw": DatasetKey("glue", "db.raw")})
    assert resolved.fields == [{"namespace": "glue", "name": "db.raw", "field": "x"}]
    assert resolved.run_inputs == [{"runId": RUN_ID, "namespace": "glue", "name": "db.raw"}]
    [edge] = resolved.job_inputs
    assert (edge["firstSeenAt"], edge["lastSeenAt"]) == (T0, T0 + timedelta(seconds=1))


def test_self_parent_run_has_no_parent_in_process_row() -> None:
    event = parse_sample("datahub/gs_input_output.json")
    assert isinstance(event, RunEvent)
    row = process_row(summarize(event))
    assert row["runId"] == "0190e00b-80a0-7902-829f-10faa3197778"
    assert row["parentRunId"] is None
    assert row["parentJobNamespace"] is None
    assert row["parentJobName"] is None
    assert row["state"] == "COMPLETE"
    assert row["startedAt"] is None
    assert row["runAt"] == datetime(2024, 7, 23, 14, 42, 58, 176000, tzinfo=UTC)


def test_failed_run_process_row() -> None:
    event = parse_sample("datahub/sample_failed_spark.json")
    assert isinstance(event, RunEvent)
    row = process_row(summarize(event))
    assert row["state"] == "FAIL"
    assert row["rank"] == 2
    assert row["errorMessage"].startswith("Job aborted due to stage failure")
    assert row["type"] is None


def test_dataset_and_job_events_add_static_lineage() -> None:
    dataset_event = parse_sample("marquez/event_dataset_event.json")
    job_event = parsed(
        {
            "eventTime": "2024-01-01T00:00:00Z",
            "job": {"namespace": "ns", "name": "static"},
            "inputs": [dataset("n", "a")],
            "outputs": [dataset("n", "b")],
        }
    )
    assert isinstance(job_event, JobEvent)
    batch = build_batch([dataset_event, job_event], [])
    assert {(r["namespace"], r["name"]) for r in batch.datasets} == {
        ("my-dataset-namespace", "my-dataset-name"),
        ("n", "a"),
        ("n", "b"),
    }
    assert batch.run_inputs == []
    assert batch.run_outputs == []
    assert [r["lastRunId"] for r in batch.job_inputs + batch.job_outputs] == [None, None]
    assert not batch.is_empty()
    assert build_batch([], []).is_empty()


# Order independence.


def _canonical(batch: GraphBatch) -> str:
    kinds = (
        "jobs", "datasets", "run_inputs", "run_outputs", "job_inputs", "job_outputs",
        "fields", "derivations",
    )  # fmt: skip
    return json.dumps(
        {
            kind: sorted(
                json.dumps(row, sort_keys=True, default=str) for row in getattr(batch, kind)
            )
            for kind in kinds
        },
        sort_keys=True,
    )


@settings(max_examples=150, deadline=None)
@given(run_events(), st.data())
def test_any_permutation_of_a_runs_events_gives_the_same_rows(
    events: list[Event], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(events))
    assert _canonical(build_batch(shuffled, [])) == _canonical(build_batch(events, []))


@settings(max_examples=100, deadline=None)
@given(run_events())
def test_every_key_appears_once_per_batch(events: list[Event]) -> None:
    batch = build_batch(events, [])
    by_key(batch.jobs, "namespace", "name")
    by_key(batch.datasets, "namespace", "name")
    by_key(batch.run_outputs, "runId", "namespace", "name")
    by_key(batch.job_inputs, "jobNamespace", "jobName", "namespace", "name")
    by_key(batch.fields, "namespace", "name", "field")
    for row in batch.datasets:
        assert not row["namespace"].startswith(("s3a://", "s3n://"))
        assert row["name"] == "/" or not row["name"].endswith("/")
