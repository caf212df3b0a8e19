"""OpenLineage wire models (spec 2.x) and `parse(bytes)`.

Tolerant where the spec is open: unknown fields are ignored, and every facet is kept as the JSON
it was sent as, decoded only when the graph reads it. Strict where the graph depends on it: runId
is a UUID, eventTime a timestamp, namespaces and names non-empty and short enough to be Neo4j
index keys. Typed facet accessors return None for a facet that is absent or malformed, so one odd
facet never rejects an otherwise good event. msgspec decodes the events without building their
facets (half the data path's CPU went to that; docs/performance.md, levers), and pydantic
validates the few facets the graph reads.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from lineage_stream.errors import RejectedEvent, RejectReason

if TYPE_CHECKING:
    from lineage_stream.naming import DatasetIdentity

# Neo4j range-index keys must stay under 8 KiB; four UTF-8 bytes per character at worst.
MAX_NAMESPACE_CHARS = 500
MAX_NAME_CHARS = 1000
MAX_FIELD_CHARS = 500
# No OpenLineage producer existed before this; earlier times are corrupt clocks or bad input.
EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_CLOCK_SKEW = timedelta(days=1)
SUPPORTED_SPEC_MAJOR = 2
_SPEC_VERSION = re.compile(r"/spec/(\d+)-(\d+)-(\d+)/")

WireNamespace = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAMESPACE_CHARS)]
WireName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS)]
# The same constraints for the facets, which pydantic validates.
Namespace = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAMESPACE_CHARS)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]
Facets = dict[str, msgspec.Raw]
"""Facets by name, each left as the JSON it was sent as: the graph reads a handful of them, and
decoding a run's logical plan or a wide schema it already wrote would be most of the parsing."""


def _as_utc(value: datetime) -> datetime:
    """A timestamp without a zone is UTC (the Marquez fixtures send those)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class EventType(StrEnum):
    START = "START"
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    ABORT = "ABORT"
    FAIL = "FAIL"
    OTHER = "OTHER"


# Not tracked by the garbage collector (`gc=False`): they hold no cycles, and the worker makes
# hundreds of thousands a minute.
class Run(msgspec.Struct, frozen=True, gc=False, rename={"run_id": "runId"}):
    run_id: uuid.UUID
    facets: Facets = {}


class Job(msgspec.Struct, frozen=True, gc=False):
    namespace: WireNamespace
    name: WireName
    facets: Facets = {}


class Dataset(msgspec.Struct, frozen=True, dict=True):
    namespace: WireNamespace
    name: WireName
    facets: Facets = {}

    @cached_property
    def identity(self) -> DatasetIdentity:
        """The node this dataset is (`naming.identify`): pairing, alias lookup and every row
        built from the dataset ask for it, and its symlinks are parsed once."""
        from lineage_stream.naming import identify  # naming is built on these models

        return identify(self)

    @cached_property
    def schema_digest(self) -> bytes | None:
        """A digest of the schema facet as sent, None without one: the written-columns cache
        (`graph.WrittenColumns`) knows a facet by it."""
        return _digest(b"schema", self.facets.get("schema"))

    @cached_property
    def column_lineage_digest(self) -> bytes | None:
        """A digest of the columnLineage facet as sent, None without one (see `schema_digest`);
        alias lookup and row building both ask for it."""
        return _digest(b"columnLineage", self.facets.get("columnLineage"))


class InputDataset(Dataset, frozen=True, dict=True, rename={"input_facets": "inputFacets"}):
    input_facets: Facets = {}


class OutputDataset(Dataset, frozen=True, dict=True, rename={"output_facets": "outputFacets"}):
    output_facets: Facets = {}


class RunEvent(msgspec.Struct, frozen=True, gc=False):
    event_time: datetime
    event_type: EventType
    """The spec makes eventType optional; a missing one is an OTHER event (adds lineage, no
    state)."""
    producer: str
    schema_url: str | None
    run: Run
    job: Job
    inputs: list[InputDataset]
    outputs: list[OutputDataset]


class JobEvent(msgspec.Struct, frozen=True, gc=False):
    """Static lineage: a job and its datasets, no run."""

    event_time: datetime
    producer: str
    schema_url: str | None
    job: Job
    inputs: list[InputDataset]
    outputs: list[OutputDataset]


class DatasetEvent(msgspec.Struct, frozen=True, gc=False):
    """Static metadata of one dataset, no run and no job."""

    event_time: datetime
    producer: str
    schema_url: str | None
    dataset: Dataset


Event = RunEvent | JobEvent | DatasetEvent


class _Document(
    msgspec.Struct,
    frozen=True,
    gc=False,
    rename={"event_time": "eventTime", "event_type": "eventType", "schema_url": "schemaURL"},
):
    """Any of the three events as sent; `parse` tells them apart by the keys present."""

    event_time: datetime
    event_type: str | msgspec.UnsetType = msgspec.UNSET
    producer: str = ""
    schema_url: str | None = None
    run: Run | msgspec.UnsetType = msgspec.UNSET
    job: Job | msgspec.UnsetType = msgspec.UNSET
    dataset: Dataset | msgspec.UnsetType = msgspec.UNSET
    inputs: list[InputDataset] | None = None
    outputs: list[OutputDataset] | None = None


_DECODER = msgspec.json.Decoder(_Document)


def parse(raw: bytes, *, max_bytes: int, now: datetime) -> Event:
    """Decode one Kafka message value into an event, or raise `RejectedEvent` with the reason."""
    if len(raw) > max_bytes:
        raise RejectedEvent(
            RejectReason.TOO_LARGE, f"{len(raw)} bytes is above the limit of {max_bytes} bytes"
        )
    try:
        document = _DECODER.decode(raw)
    except msgspec.ValidationError as exc:
        raise _invalid(raw, str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise RejectedEvent(RejectReason.NOT_JSON, str(exc)) from exc
    except RecursionError as exc:
        raise RejectedEvent(
            RejectReason.NOT_JSON, "JSON nested beyond the decoder's depth limit"
        ) from exc
    event_type = _supported_event_type(document.event_type)
    _check_spec_version(document.schema_url)
    event_time = _as_utc(document.event_time)
    _check_event_time(event_time, now)
    inputs, outputs = document.inputs or [], document.outputs or []
    if not isinstance(document.run, msgspec.UnsetType):
        return RunEvent(
            event_time, event_type, document.producer, document.schema_url,
            document.run, _required(document.job, "job"), inputs, outputs,
        )  # fmt: skip
    if not isinstance(document.dataset, msgspec.UnsetType):
        return DatasetEvent(event_time, document.producer, document.schema_url, document.dataset)
    if not isinstance(document.job, msgspec.UnsetType):
        return JobEvent(
            event_time, document.producer, document.schema_url, document.job, inputs, outputs
        )
    raise RejectedEvent(
        RejectReason.INVALID_EVENT,
        "not a RunEvent, JobEvent or DatasetEvent: no run/job/dataset",
    )


def _invalid(raw: bytes, problem: str) -> RejectedEvent:
    """Why a well-formed JSON document is no event: not an object, an unsupported eventType or
    spec (which say more than the shape they changed), else what the decoder found."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # the decoder stops at the first wrong type
        return RejectedEvent(RejectReason.NOT_JSON, str(exc))
    if not isinstance(document, dict):
        return RejectedEvent(
            RejectReason.INVALID_EVENT, f"expected a JSON object, got {type(document).__name__}"
        )
    try:
        event_type = document.get("eventType")
        _supported_event_type(msgspec.UNSET if event_type is None else event_type)
        schema_url = document.get("schemaURL")
        _check_spec_version(schema_url if isinstance(schema_url, str) else None)
    except RejectedEvent as unsupported:
        if unsupported.reason is RejectReason.UNSUPPORTED:
            return unsupported
    return RejectedEvent(RejectReason.INVALID_EVENT, problem)


def _required(value: Job | msgspec.UnsetType, key: str) -> Job:
    if isinstance(value, msgspec.UnsetType):
        raise RejectedEvent(RejectReason.INVALID_EVENT, f"Object missing required field `{key}`")
    return value


def peek_run_id(raw: bytes | None) -> bytes | None:
    """The runId of an event as a Kafka key, or None when it has none (or is not an event)."""
    try:
        document = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return None
    run = document.get("run") if isinstance(document, dict) else None
    run_id = run.get("runId") if isinstance(run, dict) else None
    return run_id.lower().encode() if isinstance(run_id, str) else None


def _supported_event_type(event_type: object) -> EventType:
    if isinstance(event_type, msgspec.UnsetType):
        return EventType.OTHER
    if not isinstance(event_type, str):
        raise RejectedEvent(
            RejectReason.INVALID_EVENT,
            f"eventType must be a string, got {type(event_type).__name__}",
        )
    if event_type not in EventType.__members__:
        raise RejectedEvent(
            RejectReason.UNSUPPORTED,
            f"eventType {event_type[:80]!r} is not one of {', '.join(EventType)}",
        )
    return EventType(event_type)


def _check_spec_version(schema_url: str | None) -> None:
    if schema_url is not None and (match := _SPEC_VERSION.search(schema_url)):
        major = int(match.group(1))
        if major > SUPPORTED_SPEC_MAJOR:
            raise RejectedEvent(
                RejectReason.UNSUPPORTED,
                f"OpenLineage spec {major}.x is newer than the supported {SUPPORTED_SPEC_MAJOR}.x",
            )


def _check_event_time(event_time: datetime, now: datetime) -> None:
    if event_time < EARLIEST_EVENT_TIME:
        raise RejectedEvent(
            RejectReason.INVALID_EVENT, f"eventTime {event_time.isoformat()} is before 2000"
        )
    if event_time > now + MAX_CLOCK_SKEW:
        raise RejectedEvent(
            RejectReason.INVALID_EVENT,
            f"eventTime {event_time.isoformat()} is more than a day in the future",
        )


# Typed access to the facets the graph uses.


class ParentRef(msgspec.Struct, frozen=True, gc=False):
    """Kept in the pairing table (`pairing.RunState`), hence a struct like it."""

    run_id: uuid.UUID
    job_namespace: str
    job_name: str


class JobTypeFacet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    job_type: str | None = Field(default=None, alias="jobType")
    integration: str | None = None
    processing_type: str | None = Field(default=None, alias="processingType")


class SchemaField(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    name: Annotated[str, StringConstraints(min_length=1, max_length=MAX_FIELD_CHARS)]
    type: str | None = None


class Symlink(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    namespace: Namespace
    name: Name
    type: str = ""


class InputFieldRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    namespace: Namespace
    name: Name
    field: Annotated[str, StringConstraints(min_length=1, max_length=MAX_FIELD_CHARS)]
    transformations: list[dict[str, Any]] = Field(default_factory=list)


class ColumnLineage(BaseModel):
    """Output field name -> the input fields it derives from."""

    model_config = ConfigDict(frozen=True)

    fields: dict[str, list[InputFieldRef]]


class DatasetStatistics(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    row_count: int | None = Field(default=None, alias="rowCount")
    size: int | None = None


def facet_of(facets: Facets, key: str) -> dict[str, Any] | None:
    """The facet decoded, None when it is absent or not a JSON object."""
    return _decoded(facets.get(key))


def _decoded(facet_json: msgspec.Raw | bytes | None) -> dict[str, Any] | None:
    if facet_json is None:
        return None
    value = msgspec.json.decode(facet_json)
    return value if isinstance(value, dict) else None


def _text(facet: dict[str, Any] | None, key: str) -> str | None:
    if facet is None:
        return None
    value = facet.get(key)
    return value if isinstance(value, str) and value else None


def parent_of(run: Run) -> ParentRef | None:
    facet = facet_of(run.facets, "parent")
    if facet is None:
        return None
    parent_run, parent_job = facet.get("run"), facet.get("job")
    if not isinstance(parent_run, dict) or not isinstance(parent_job, dict):
        return None
    try:
        return ParentRef(
            run_id=uuid.UUID(str(parent_run.get("runId"))),
            job_namespace=_required_text(parent_job, "namespace"),
            job_name=_required_text(parent_job, "name"),
        )
    except ValueError:
        return None


def _required_text(mapping: dict[str, Any], key: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(key)
    return value


def job_type_of(job: Job) -> JobTypeFacet | None:
    facet = facet_of(job.facets, "jobType")
    if facet is None:
        return None
    try:
        return JobTypeFacet.model_validate(facet)
    except ValidationError:
        return None


def error_message_of(run: Run) -> str | None:
    """The spec's errorMessage facet, else openlineage-spark's `spark.exception` facet."""
    return _text(facet_of(run.facets, "errorMessage"), "message") or _text(
        facet_of(run.facets, "spark.exception"), "message"
    )


def stack_trace_of(run: Run) -> str | None:
    return _text(facet_of(run.facets, "errorMessage"), "stackTrace") or _text(
        facet_of(run.facets, "spark.exception"), "stackTrace"
    )


def engine_version_of(run: Run) -> str | None:
    """Spark's version: processing_engine (1.x) or the legacy spark_version facet (0.x)."""
    return _text(facet_of(run.facets, "processing_engine"), "version") or _text(
        facet_of(run.facets, "spark_version"), "spark-version"
    )


def adapter_version_of(run: Run) -> str | None:
    return _text(facet_of(run.facets, "processing_engine"), "openlineageAdapterVersion") or _text(
        facet_of(run.facets, "spark_version"), "openlineage-spark-version"
    )


def nominal_start_of(run: Run) -> datetime | None:
    value = _text(facet_of(run.facets, "nominalTime"), "nominalStartTime")
    if value is None:
        return None
    try:
        return _as_utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def sql_of(job: Job) -> str | None:
    return _text(facet_of(job.facets, "sql"), "query")


def description_of(job: Job) -> str | None:
    return _text(facet_of(job.facets, "documentation"), "description")


def owners_of(job: Job) -> list[str] | None:
    facet = facet_of(job.facets, "ownership")
    owners = facet.get("owners") if facet else None
    if not isinstance(owners, list):
        return None
    names = [o["name"] for o in owners if isinstance(o, dict) and isinstance(o.get("name"), str)]
    return names or None


def schema_of(dataset: Dataset) -> list[SchemaField] | None:
    facet = facet_of(dataset.facets, "schema")
    fields = facet.get("fields") if facet else None
    if not isinstance(fields, list):
        return None
    parsed = []
    for field in fields:
        try:
            parsed.append(SchemaField.model_validate(field))
        except ValidationError:
            continue
    return parsed


def data_source_of(dataset: Dataset) -> str | None:
    facet = facet_of(dataset.facets, "dataSource")
    return _text(facet, "uri") or _text(facet, "name")


def symlinks_in(facet_json: msgspec.Raw | bytes | None) -> list[Symlink]:
    """The identifiers of a symlinks facet as sent (`naming` keeps identities by it)."""
    facet = _decoded(facet_json)
    identifiers = facet.get("identifiers") if facet else None
    if not isinstance(identifiers, list):
        return []
    links = []
    for identifier in identifiers:
        try:
            links.append(Symlink.model_validate(identifier))
        except ValidationError:
            continue
    return links


def column_lineage_of(dataset: Dataset) -> ColumnLineage | None:
    facet = facet_of(dataset.facets, "columnLineage")
    fields = facet.get("fields") if facet else None
    if not isinstance(fields, dict):
        return None
    lineage: dict[str, list[InputFieldRef]] = {}
    for output_field, spec in fields.items():
        inputs = spec.get("inputFields") if isinstance(spec, dict) else None
        if not isinstance(inputs, list) or not output_field or len(output_field) > MAX_FIELD_CHARS:
            continue
        refs = []
        for ref in inputs:
            try:
                refs.append(InputFieldRef.model_validate(ref))
            except ValidationError:
                continue
        if refs:
            lineage[output_field] = refs
    return ColumnLineage(fields=lineage) if lineage else None


def statistics_of(dataset: InputDataset | OutputDataset) -> DatasetStatistics | None:
    facets = dataset.output_facets if isinstance(dataset, OutputDataset) else dataset.input_facets
    key = "outputStatistics" if isinstance(dataset, OutputDataset) else "inputStatistics"
    facet = facet_of(facets, key)
    if facet is None:
        return None
    try:
        return DatasetStatistics.model_validate(facet)
    except ValidationError:
        return None


def _digest(kind: bytes, facet: msgspec.Raw | None) -> bytes | None:
    if facet is None:
        return None
    digest = hashlib.blake2b(kind, digest_size=16)
    digest.update(facet)
    return digest.digest()


def encode(document: Any) -> bytes:
    """Serialise JSON the way every producer in this project does (tests, demo, DLQ detail)."""
    return orjson.dumps(document)
