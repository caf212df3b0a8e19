from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from lineage_stream.errors import RejectedEvent, RejectReason
from lineage_stream.openlineage import (
    DatasetEvent,
    EventType,
    RunEvent,
    adapter_version_of,
    column_lineage_of,
    engine_version_of,
    error_message_of,
    facet_of,
    job_type_of,
    parent_of,
    parse,
    peek_run_id,
    schema_of,
    statistics_of,
    symlinks_in,
)
from tests.builders import (
    DATAPROC,
    MAX_BYTES,
    NOW,
    RUN_ID,
    SAMPLES,
    dataproc,
    encoded,
    parse_sample,
    parsed,
    run_event,
    sample,
    sample_lines,
)

pytestmark = pytest.mark.unit

FULL_JSON = sorted(
    str(p.relative_to(SAMPLES))
    for p in SAMPLES.rglob("*.json")
    if "partial-expectations" not in p.parts
)
NDJSON = sorted(str(p.relative_to(SAMPLES)) for p in SAMPLES.rglob("*.ndjson"))
PARTIAL = sorted(str(p.relative_to(SAMPLES)) for p in SAMPLES.glob("openlineage/partial-*/*.json"))


def rejected(raw: bytes, max_bytes: int = MAX_BYTES) -> RejectReason:
    with pytest.raises(RejectedEvent) as info:
        parse(raw, max_bytes=max_bytes, now=NOW)
    return info.value.reason


def test_the_shared_samples_are_there() -> None:
    assert len(FULL_JSON) == 45
    assert len(NDJSON) == 6
    assert len(PARTIAL) == 6


@pytest.mark.parametrize("relpath", FULL_JSON)
def test_every_full_json_sample_parses(relpath: str) -> None:
    document = json.loads(sample(relpath))
    event = parse_sample(relpath)
    assert event.event_time.tzinfo is not None
    if "run" in document:
        assert isinstance(event, RunEvent)
        assert str(event.run.run_id) == document["run"]["runId"]
        assert event.job.name == document["job"]["name"]
        assert event.event_type == document.get("eventType", "OTHER")
        assert len(event.inputs) == len(document.get("inputs") or [])
        assert len(event.outputs) == len(document.get("outputs") or [])


@pytest.mark.parametrize("relpath", NDJSON)
def test_every_ndjson_sample_line_parses(relpath: str) -> None:
    lines = sample_lines(relpath)
    assert lines
    for line in lines:
        event = parse(line, max_bytes=MAX_BYTES, now=NOW)
        assert isinstance(event, RunEvent)
        assert str(event.run.run_id) == json.loads(line)["run"]["runId"]


def test_ndjson_samples_hold_twenty_events() -> None:
    assert sum(len(sample_lines(relpath)) for relpath in NDJSON) == 20


@pytest.mark.parametrize("relpath", PARTIAL)
def test_partial_expectations_are_rejected_as_invalid(relpath: str) -> None:
    assert rejected(sample(relpath)) is RejectReason.INVALID_EVENT


def test_dataset_event_parses() -> None:
    event = parse_sample("marquez/event_dataset_event.json")
    assert isinstance(event, DatasetEvent)
    assert event.dataset.namespace == "my-dataset-namespace"
    assert event.dataset.name == "my-dataset-name"
    assert [f.name for f in schema_of(event.dataset) or []] == ["col_a"]


def test_run_event_without_event_type_is_other() -> None:
    event = parse_sample("marquez/event_required_no_timezone.json")
    assert isinstance(event, RunEvent)
    assert event.event_type is EventType.OTHER
    assert parsed(run_event(event_type=None)).event_type is EventType.OTHER


def test_event_time_without_zone_is_utc() -> None:
    event = parse_sample("marquez/event_required_no_timezone.json")
    assert event.event_time == datetime(2020, 12, 28, 19, 51, 1, 641499, tzinfo=UTC)
    assert event.event_time.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_event_time_offset_is_normalised_to_utc() -> None:
    event = parse_sample("marquez/event_unicode.json")
    assert event.event_time == datetime(2020, 12, 28, 9, 52, 0, 1000, tzinfo=UTC)
    assert event.event_time.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert event.event_time.hour == 9
    assert isinstance(event, RunEvent)
    assert event.job.name == "myjob.buggy_task\U0001f577"


def test_fractional_precisions_parse() -> None:
    for at, micros in (("2024-10-17T09:18:11.5Z", 500000), ("2024-10-17T09:18:11.7949Z", 794900)):
        assert parsed(run_event(at=at)).event_time.microsecond == micros


def test_event_time_beyond_microseconds_is_rounded() -> None:
    assert parsed(run_event(at="2024-10-17T09:18:11.123456789Z")).event_time.microsecond == 123457


def test_run_id_in_upper_case_or_without_hyphens_is_the_same_run() -> None:
    for spelling in (RUN_ID.upper(), RUN_ID.replace("-", "")):
        doc = run_event()
        doc["run"]["runId"] = spelling
        event = parsed(doc)
        assert isinstance(event, RunEvent)
        assert str(event.run.run_id) == RUN_ID


def test_too_large_is_checked_before_parsing() -> None:
    assert rejected(b"\xff" * 101, max_bytes=100) is RejectReason.TOO_LARGE
    assert rejected(encoded(run_event()), max_bytes=50) is RejectReason.TOO_LARGE


def test_event_of_exactly_the_limit_is_accepted() -> None:
    raw = encoded(run_event())
    assert isinstance(parse(raw, max_bytes=len(raw), now=NOW), RunEvent)
    assert rejected(raw, max_bytes=len(raw) - 1) is RejectReason.TOO_LARGE


@pytest.mark.parametrize(
    "raw",
    [b"", b"not json", b"\xff\xfe", b"{", encoded(run_event())[:-1], b"{'a': 1}", b"NaN"],
)
def test_not_json(raw: bytes) -> None:
    assert rejected(raw) is RejectReason.NOT_JSON


def test_json_nested_too_deep_is_not_json_with_the_reason() -> None:
    nested = b'{"a":' * 2000 + b"{}" + b"}" * 2000
    raw = encoded(run_event())[:-1] + b',"deepFacet":' + nested + b"}"
    with pytest.raises(RejectedEvent) as info:
        parse(raw, max_bytes=MAX_BYTES, now=NOW)
    assert info.value.reason is RejectReason.NOT_JSON
    assert "depth" in info.value.detail


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    doc = run_event()
    target = doc
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return doc


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = run_event()
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return doc


INVALID = {
    "array": [run_event()],
    "string": "START",
    "number": 42,
    "null": None,
    "empty object": {},
    "no run/job/dataset": {"eventTime": "2024-01-01T00:00:00Z", "eventType": "START"},
    "missing runId": _without(("run", "runId")),
    "missing job": _without(("job",)),
    "missing eventTime": _without(("eventTime",)),
    "missing job namespace": _without(("job", "namespace")),
    "runId not a UUID": _with(("run", "runId"), "not-a-uuid"),
    "runId a number": _with(("run", "runId"), 12345),
    "empty job name": _with(("job", "name"), ""),
    "empty job namespace": _with(("job", "namespace"), ""),
    "job name a number": _with(("job", "name"), 7),
    "job a string": _with(("job",), "ns.name"),
    "run a list": _with(("run",), []),
    "inputs an object": _with(("inputs",), {"namespace": "n", "name": "x"}),
    "input without name": _with(("inputs",), [{"namespace": "n"}]),
    "eventTime garbage": _with(("eventTime",), "yesterday"),
    "eventTime epoch seconds": _with(("eventTime",), 1767225600),
    "eventTime a date": _with(("eventTime",), "2026-01-01"),
    "eventTime without seconds": _with(("eventTime",), "2026-01-01T00:00Z"),
    "runId a URN": _with(("run", "runId"), "urn:uuid:0192a000-0000-7000-8000-000000000001"),
    "job null": _with(("job",), None),
    "eventType null": _with(("eventType",), None),
    "facets null": _with(("run", "facets"), None),
    "job name over the limit": _with(("job", "name"), "x" * 1001),
    "job namespace over the limit": _with(("job", "namespace"), "x" * 501),
    "dataset name over the limit": _with(("outputs",), [{"namespace": "n", "name": "x" * 1001}]),
    "eventTime before 2000": _with(("eventTime",), "1999-12-31T23:59:59Z"),
    "eventTime two days ahead": _with(("eventTime",), "2026-01-03T00:00:00Z"),
    "eventType a list": _with(("eventType",), ["START"]),
    "eventType an object": _with(("eventType",), {"type": "START"}),
    "dataset event without name": {
        "eventTime": "2024-01-01T00:00:00Z",
        "dataset": {"namespace": "n"},
    },
}


@pytest.mark.parametrize("document", INVALID.values(), ids=INVALID.keys())
def test_invalid_event(document: Any) -> None:
    assert rejected(encoded(document)) is RejectReason.INVALID_EVENT


def test_limits_are_inclusive() -> None:
    event = parsed(_with(("job", "name"), "x" * 1000))
    assert isinstance(event, RunEvent)
    assert len(event.job.name) == 1000
    assert parsed(_with(("job", "namespace"), "y" * 500)).job.namespace == "y" * 500  # type: ignore[union-attr]


def test_event_time_within_a_day_of_now_is_accepted() -> None:
    assert parsed(run_event(at="2026-01-01T23:59:00Z")).event_time.day == 1
    assert parsed(run_event(at="2000-01-01T00:00:00Z")).event_time.year == 2000


@pytest.mark.parametrize(
    "document",
    [
        run_event(event_type="BOGUS"),
        run_event(event_type="start"),
        _with(("schemaURL",), "https://openlineage.io/spec/3-0-0/OpenLineage.json#/$defs/RunEvent"),
    ],
    ids=["BOGUS", "lowercase", "spec 3"],
)
def test_unsupported(document: dict[str, Any]) -> None:
    assert rejected(encoded(document)) is RejectReason.UNSUPPORTED


def test_older_spec_majors_are_supported() -> None:
    doc = _with(
        ("schemaURL",), "https://openlineage.io/spec/1-0-2/OpenLineage.json#/$defs/RunEvent"
    )
    assert isinstance(parsed(doc), RunEvent)


def test_rejection_carries_reason_and_detail() -> None:
    with pytest.raises(RejectedEvent) as info:
        parse(encoded(_with(("run", "runId"), "nope")), max_bytes=MAX_BYTES, now=NOW)
    assert info.value.reason == "invalid_event"
    assert "runId" in info.value.detail


def test_null_inputs_and_outputs_are_empty() -> None:
    event = parsed(_with(("inputs",), None) | {"outputs": None})
    assert isinstance(event, RunEvent)
    assert event.inputs == []
    assert event.outputs == []


# Facet accessors on real samples.


def test_spark_exception_message_of_failed_spark_run() -> None:
    event = parse_sample("datahub/sample_failed_spark.json")
    assert isinstance(event, RunEvent)
    assert event.event_type is EventType.FAIL
    message = error_message_of(event.run)
    assert message is not None
    assert message.startswith("Job aborted due to stage failure: Task 0 in stage 2.0 failed")
    expected = json.loads(sample("datahub/sample_failed_spark.json"))
    assert message == expected["run"]["facets"]["spark.exception"]["message"]
    assert job_type_of(event.job) is None
    assert parent_of(event.run) is None


def test_error_message_facet_is_preferred_over_spark_exception() -> None:
    event = parsed(run_event("FAIL", error_message="spec message", spark_exception="spark one"))
    assert isinstance(event, RunEvent)
    assert error_message_of(event.run) == "spec message"
    assert error_message_of(parsed(run_event("FAIL")).run) is None  # type: ignore[union-attr]


def test_parent_of_dataproc_child_run() -> None:
    event = dataproc(11)
    assert isinstance(event, RunEvent)
    parent = parent_of(event.run)
    assert parent is not None
    assert parent.run_id == uuid.UUID("019299c5-12f5-7946-b5b2-c6abab662e20")
    assert parent.job_namespace == "default"
    assert parent.job_name == "cl_i_test_application"
    assert parent_of(dataproc(1).run) is None  # type: ignore[union-attr]


def test_job_type_of_dataproc_runs() -> None:
    app, child = dataproc(1), dataproc(11)
    assert isinstance(app, RunEvent)
    assert isinstance(child, RunEvent)
    app_type, child_type = job_type_of(app.job), job_type_of(child.job)
    assert app_type is not None
    assert (app_type.job_type, app_type.processing_type) == ("APPLICATION", "NONE")
    assert child_type is not None
    assert (child_type.job_type, child_type.integration, child_type.processing_type) == (
        "SQL_JOB",
        "SPARK",
        "BATCH",
    )


def test_symlinks_and_column_lineage_of_dataproc_insert() -> None:
    event = dataproc(11)
    assert isinstance(event, RunEvent)
    [source], [target] = event.inputs, event.outputs
    [link] = symlinks_in(source.facets.get("symlinks"))
    assert (link.namespace, link.name, link.type) == (
        "hive://dataproc-producer-test-m:9083",
        "default.t1",
        "TABLE",
    )
    lineage = column_lineage_of(target)
    assert lineage is not None
    assert sorted(lineage.fields) == ["a", "b"]
    [ref] = lineage.fields["b"]
    assert (ref.namespace, ref.name, ref.field) == (
        "hdfs://dataproc-producer-test-m",
        "/user/hive/warehouse/t1",
        "b",
    )
    assert ref.transformations[0]["subtype"] == "IDENTITY"
    assert column_lineage_of(source) is None
    assert symlinks_in(event.outputs[0].facets.get("symlinks"))[0].name == "default.t2"


def test_output_statistics_only_in_the_running_event() -> None:
    with_stats, without = dataproc(13), dataproc(14)
    assert isinstance(with_stats, RunEvent)
    assert isinstance(without, RunEvent)
    stats = statistics_of(with_stats.outputs[0])
    assert stats is not None
    assert (stats.row_count, stats.size) == (2, 8)
    assert statistics_of(without.outputs[0]) is None
    assert statistics_of(with_stats.inputs[0]) is None


def test_zero_output_statistics_are_kept() -> None:
    event = parse_sample("datahub/sample_failed_spark.json")
    assert isinstance(event, RunEvent)
    stats = statistics_of(event.outputs[0])
    assert stats is not None
    assert (stats.row_count, stats.size) == (0, 0)


def test_legacy_spark_version_facet() -> None:
    event = parse_sample("openlineage/quickstart_databricks_complete.json")
    assert isinstance(event, RunEvent)
    assert engine_version_of(event.run) == "3.2.1"
    assert adapter_version_of(event.run) == "0.12.0-SNAPSHOT"
    assert job_type_of(event.job) is None


def test_processing_engine_facet() -> None:
    event = dataproc(1)
    assert isinstance(event, RunEvent)
    assert engine_version_of(event.run) == "3.5.1"
    assert adapter_version_of(event.run) == "1.23.0"


@pytest.mark.parametrize(
    "parent",
    [
        {"run": {"runId": "nope"}, "job": {"namespace": "ns", "name": "app"}},
        {"run": {}, "job": {"namespace": "ns", "name": "app"}},
        {"run": {"runId": "0192a000-0000-7000-8000-00000000000f"}, "job": {"name": "app"}},
        {"run": {"runId": "0192a000-0000-7000-8000-00000000000f"}, "job": "app"},
        "not an object",
        [],
    ],
)
def test_malformed_parent_is_none_and_event_still_parses(parent: Any) -> None:
    doc = run_event()
    doc["run"]["facets"]["parent"] = parent
    event = parsed(doc)
    assert isinstance(event, RunEvent)
    assert parent_of(event.run) is None
    assert msgspec.json.decode(event.run.facets["parent"]) == parent


def test_malformed_known_facets_are_none() -> None:
    doc = run_event(outputs=[{"namespace": "n", "name": "x"}])
    doc["job"]["facets"]["jobType"] = {"jobType": ["not", "text"]}
    doc["outputs"][0]["facets"] = {
        "symlinks": {"identifiers": "none"},
        "columnLineage": {"fields": []},
        "schema": {"fields": {"a": 1}},
    }
    doc["outputs"][0]["outputFacets"] = {"outputStatistics": {"rowCount": "many"}}
    event = parsed(doc)
    assert isinstance(event, RunEvent)
    assert job_type_of(event.job) is None
    output = event.outputs[0]
    assert symlinks_in(output.facets.get("symlinks")) == []
    assert column_lineage_of(output) is None
    assert schema_of(output) is None
    assert statistics_of(output) is None


def test_bad_entries_inside_facets_are_skipped() -> None:
    doc = run_event(outputs=[{"namespace": "n", "name": "x"}])
    doc["outputs"][0]["facets"] = {
        "schema": {"fields": [{"name": "a"}, {"name": ""}, {"type": "int"}, {"name": "b"}]},
        "symlinks": {"identifiers": [{"namespace": "h", "name": "db.t"}, {"name": "db.u"}]},
    }
    event = parsed(doc)
    assert isinstance(event, RunEvent)
    assert [f.name for f in schema_of(event.outputs[0]) or []] == ["a", "b"]
    assert [
        (s.namespace, s.name) for s in symlinks_in(event.outputs[0].facets.get("symlinks"))
    ] == [("h", "db.t")]


def test_unknown_facets_are_kept() -> None:
    event = parse_sample(
        "compatibility-tests/spark_dataproc_bigquery_shakespare/1729097588979.json"
    )
    assert isinstance(event, RunEvent)
    details = facet_of(event.run.facets, "spark_applicationDetails")
    assert details is not None
    assert details["applicationId"] == "application_1729097245443_0002"
    logical_plan = parse_sample("openlineage/quickstart_databricks_complete.json")
    assert isinstance(logical_plan, RunEvent)
    assert "spark.logicalPlan" in logical_plan.run.facets
    assert (facet_of(logical_plan.outputs[0].facets, "storage") or {})["storageLayer"] == "delta"


def test_unknown_fields_are_ignored() -> None:
    doc = run_event(inputs=[{"namespace": "n", "name": "x", "x-custom": 1}])
    doc |= {"x-custom": {"a": 1}}
    doc["run"]["x-custom"] = [1]
    event = parsed(doc)
    assert isinstance(event, RunEvent)
    assert event.inputs[0].name == "x"


def test_dataproc_samples_order_and_types() -> None:
    types = [json.loads(sample(f"{DATAPROC}/{n}.json"))["eventType"] for n in range(1, 17)]
    assert [dataproc(n).event_type for n in range(1, 17)] == types  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (
            b'{"run": {"runId": "0192ABCD-0000-7000-8000-000000000001"}}',
            b"0192abcd-0000-7000-8000-000000000001",
        ),
        (b'{"dataset": {"namespace": "n", "name": "x"}}', None),
        (b'{"run": {"runId": 5}}', None),
        (b"[1]", None),
        (b"not json", None),
        (None, None),
    ],
)
def test_peek_run_id_gives_the_repartition_key(raw: bytes | None, key: bytes | None) -> None:
    assert peek_run_id(raw) == key
