"""One-line builders of OpenLineage documents and access to the shared real samples."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from lineage_stream.openlineage import Dataset, Event, encode, parse

SHARED = Path(__file__).resolve().parents[2] / "shared"
SAMPLES = SHARED / "openlineage-samples"
DATAPROC = "compatibility-tests/spark_dataproc_simple_producer_test_complete"

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MAX_BYTES = 1_000_000
RUN_ID = "0192a000-0000-7000-8000-000000000001"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/spark"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def run_event(
    event_type: str | None = "START",
    run_id: str = RUN_ID,
    job: tuple[str, str] = ("ns", "name"),
    at: str = "2024-01-01T00:00:00Z",
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    parent: tuple[str, str, str] | None = None,
    error_message: str | None = None,
    spark_exception: str | None = None,
    job_type: str | None = None,
    processing_type: str | None = None,
) -> dict[str, Any]:
    """A RunEvent document; `event_type=None` leaves eventType out."""
    run_facets: dict[str, Any] = {}
    if parent is not None:
        parent_run, parent_ns, parent_name = parent
        run_facets["parent"] = {
            "run": {"runId": parent_run},
            "job": {"namespace": parent_ns, "name": parent_name},
        }
    if error_message is not None:
        run_facets["errorMessage"] = {"message": error_message, "programmingLanguage": "JAVA"}
    if spark_exception is not None:
        run_facets["spark.exception"] = {"message": spark_exception, "stackTrace": "at x.y(z)"}
    job_facets: dict[str, Any] = {}
    if job_type is not None or processing_type is not None:
        job_facets["jobType"] = {"integration": "SPARK"}
        if job_type is not None:
            job_facets["jobType"]["jobType"] = job_type
        if processing_type is not None:
            job_facets["jobType"]["processingType"] = processing_type
    doc: dict[str, Any] = {
        "eventTime": at,
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": run_id, "facets": run_facets},
        "job": {"namespace": job[0], "name": job[1], "facets": job_facets},
        "inputs": list(inputs or []),
        "outputs": list(outputs or []),
    }
    if event_type is not None:
        doc["eventType"] = event_type
    return doc


def dataset(
    ns: str,
    name: str,
    fields: list[str] | None = None,
    symlink: tuple[str, str] | None = None,
    column_lineage: dict[str, list[tuple[str, str, str]]] | None = None,
    stats: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """A dataset; column_lineage maps an output field to (namespace, name, field) inputs."""
    facets: dict[str, Any] = {}
    if fields is not None:
        facets["schema"] = {"fields": [{"name": f, "type": "string"} for f in fields]}
    if symlink is not None:
        facets["symlinks"] = {
            "identifiers": [{"namespace": symlink[0], "name": symlink[1], "type": "TABLE"}]
        }
    if column_lineage is not None:
        facets["columnLineage"] = {
            "fields": {
                out: {
                    "inputFields": [
                        {
                            "namespace": i_ns,
                            "name": i_name,
                            "field": i_field,
                            "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}],
                        }
                        for i_ns, i_name, i_field in refs
                    ]
                }
                for out, refs in column_lineage.items()
            }
        }
    doc: dict[str, Any] = {"namespace": ns, "name": name, "facets": facets}
    if stats is not None:
        doc["outputFacets"] = {"outputStatistics": {"rowCount": stats[0], "size": stats[1]}}
    return doc


def encoded(doc: Any) -> bytes:
    return encode(doc)


def parsed(doc: Any) -> Event:
    return parse(encoded(doc), max_bytes=MAX_BYTES, now=NOW)


def wire_dataset(doc: dict[str, Any]) -> Dataset:
    """A dataset as `parse` decodes one inside an event."""
    return msgspec.json.decode(encoded(doc), type=Dataset)


def sample(relpath: str) -> bytes:
    return (SAMPLES / relpath).read_bytes()


def sample_lines(relpath: str) -> list[bytes]:
    return [line for line in sample(relpath).splitlines() if line.strip()]


def parse_sample(relpath: str) -> Event:
    return parse(sample(relpath), max_bytes=MAX_BYTES, now=NOW)


def dataproc(number: int) -> Event:
    return parse_sample(f"{DATAPROC}/{number}.json")
