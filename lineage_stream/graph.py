"""Graph rows: what a batch of events and run summaries writes to Neo4j, as plain dicts.

One list per node or edge kind, each coalesced so that a key appears once per batch; the writer
sends each list as the parameter of one UNWIND statement. Every "latest value" carries the
eventTime it came from, so the Cypher can keep the newest whatever order batches arrive in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, TypeVar, cast

from lineage_stream.naming import DatasetIdentity, DatasetKey, location_key
from lineage_stream.openlineage import (
    Dataset,
    DatasetEvent,
    Event,
    InputDataset,
    Job,
    JobEvent,
    OutputDataset,
    RunEvent,
    column_lineage_of,
    data_source_of,
    description_of,
    job_type_of,
    owners_of,
    schema_of,
    sql_of,
    statistics_of,
)
from lineage_stream.pairing import TERMINAL_RANK, RunState, RunStateName

Row = dict[str, Any]
_Parsed = TypeVar("_Parsed")


@dataclass
class GraphBatch:
    jobs: list[Row] = field(default_factory=list)
    datasets: list[Row] = field(default_factory=list)
    processes: list[Row] = field(default_factory=list)
    run_inputs: list[Row] = field(default_factory=list)
    run_outputs: list[Row] = field(default_factory=list)
    job_inputs: list[Row] = field(default_factory=list)
    job_outputs: list[Row] = field(default_factory=list)
    fields: list[Row] = field(default_factory=list)
    derivations: list[Row] = field(default_factory=list)
    column_sets: list[int] = field(default_factory=list)
    """Fingerprints of the column-lineage facets whose rows this batch holds (see
    WrittenColumns); not written to Neo4j."""

    def is_empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self) if f.name != "column_sets")

    def last_writes(self) -> list[Row]:
        """Per dataset, the newest (time, run) that wrote it in this batch.

        Cypher evaluates a clause for all rows before the next clause, so a guarded update
        must see at most one row per node; this is that row.
        """
        newest: dict[tuple[str, str], Row] = {}
        for row in self.run_outputs:
            key = (row["namespace"], row["name"])
            current = newest.get(key)
            if current is None or (row["at"], row["runId"]) > (current["at"], current["runId"]):
                newest[key] = row
        return [
            {"namespace": r["namespace"], "name": r["name"], "at": r["at"], "runId": r["runId"]}
            for r in newest.values()
        ]

    def job_last_runs(self) -> list[Row]:
        """Per job, the run of this batch that started last (one row per job, as above)."""
        newest: dict[tuple[str, str], Row] = {}
        for row in self.processes:
            key = (row["jobNamespace"], row["jobName"])
            current = newest.get(key)
            if current is None or (row["runAt"], row["runId"]) > (
                current["runAt"],
                current["runId"],
            ):
                newest[key] = row
        return [
            {"jobNamespace": key[0], "jobName": key[1], "runId": row["runId"]}
            for key, row in newest.items()
        ]


class WrittenColumns:
    """Fingerprints of the Field and DERIVES rows Neo4j already holds, so batches skip them.

    Column lineage repeats on every run of a job and is most of what a batch writes, yet its
    rows carry no time-dependent value: once committed, writing one again changes nothing. Two
    levels: a whole facet already written is not even parsed again (a schema: same dataset and
    facet; column lineage: same job, output, facet and resolved input datasets), and any other
    row already written is dropped from the batch. An LRU of 64-bit hashes bounds the memory
    (a collision would skip one row or facet; at the default capacity its odds per lookup are
    below 1e-13). The graph must not
    lose these rows behind the writer's back: after deleting Fields by hand, restart the worker.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._hashes: OrderedDict[int, None] = OrderedDict()
        # facet fingerprint -> what the graph reads of it, so a repeated facet is parsed once
        self._parsed: OrderedDict[bytes, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hashes)

    @property
    def enabled(self) -> bool:
        return self._capacity > 0

    def unwritten(self, batch: GraphBatch) -> GraphBatch:
        """The batch without the Field and DERIVES rows already written."""
        if not self._hashes:
            return batch
        return replace(
            batch,
            fields=[row for row in batch.fields if not self._seen(self._fingerprint(row))],
            derivations=[
                row for row in batch.derivations if not self._seen(self._fingerprint(row))
            ],
        )

    def holds(self, column_set: int) -> bool:
        """Whether a column-lineage facet's rows (see `column_set`) are already written."""
        return self._seen(column_set)

    def _seen(self, fingerprint: int) -> bool:
        if fingerprint not in self._hashes:
            return False
        self._hashes.move_to_end(fingerprint)
        return True

    def remember(self, batch: GraphBatch) -> None:
        """Record the batch's Field and DERIVES rows as written: once its transaction committed,
        or once planned, while a write that fails forgets them all (see `planning`)."""
        if self._capacity <= 0:
            return
        fingerprints = [self._fingerprint(row) for row in (*batch.fields, *batch.derivations)]
        for fingerprint in (*fingerprints, *batch.column_sets):
            self._hashes[fingerprint] = None
            self._hashes.move_to_end(fingerprint)
        while len(self._hashes) > self._capacity:
            self._hashes.popitem(last=False)

    def lineage_locations(self, dataset: Dataset) -> tuple[bytes | None, tuple[DatasetKey, ...]]:
        """The fingerprint of a dataset's column-lineage facet (None when the cache is off) and
        the locations of the input fields it names."""
        digest = dataset.column_lineage_digest if self.enabled else None
        return self._parse(digest, _lineage_locations, dataset)

    def schema(self, dataset: Dataset) -> tuple[bytes | None, Schema | None]:
        """The fingerprint of a dataset's schema facet (None when the cache is off) and the
        names and types of its fields."""
        return self._parse(dataset.schema_digest if self.enabled else None, _schema, dataset)

    def _parse(
        self, fingerprint: bytes | None, parse: Callable[[Dataset], _Parsed], dataset: Dataset
    ) -> tuple[bytes | None, _Parsed]:
        if fingerprint is None:
            return None, parse(dataset)
        if fingerprint in self._parsed:
            self._parsed.move_to_end(fingerprint)
            return fingerprint, cast(_Parsed, self._parsed[fingerprint])
        parsed = self._parsed[fingerprint] = parse(dataset)
        if len(self._parsed) > MAX_REMEMBERED_FACETS:
            self._parsed.popitem(last=False)
        return fingerprint, parsed

    @staticmethod
    def _fingerprint(row: Row) -> int:
        return hash(tuple(tuple(v) if isinstance(v, list) else v for v in row.values()))


MAX_REMEMBERED_FACETS = 20_000
"""Distinct schema and column-lineage facets kept parsed: a fleet's tables and jobs, not runs."""


@dataclass(frozen=True, slots=True)
class Schema:
    names: tuple[str, ...]
    types: tuple[str, ...]


def _schema(dataset: Dataset) -> Schema | None:
    fields = schema_of(dataset)
    if fields is None:
        return None
    return Schema(tuple(f.name for f in fields), tuple(f.type or "" for f in fields))


def _lineage_locations(dataset: Dataset) -> tuple[DatasetKey, ...]:
    lineage = column_lineage_of(dataset)
    if lineage is None:
        return ()
    return tuple(
        sorted(
            {
                location_key(ref.namespace, ref.name)
                for refs in lineage.fields.values()
                for ref in refs
            }
        )
    )


def _later(current: Row | None, candidate: Row, at_key: str, value_keys: Iterable[str]) -> None:
    """Copy `value_keys` from candidate into current when candidate carries them and is newer."""
    if current is None or candidate.get(at_key) is None:
        return
    if current.get(at_key) is None or candidate[at_key] >= current[at_key]:
        current[at_key] = candidate[at_key]
        for key in value_keys:
            current[key] = candidate[key]


class _Builder:
    def __init__(self, known_aliases: Mapping[str, DatasetKey], written: WrittenColumns) -> None:
        self.known_aliases = known_aliases
        self.written = written
        self.column_sets: dict[int, None] = {}
        self.jobs: dict[tuple[str, str], Row] = {}
        self.datasets: dict[DatasetKey, Row] = {}
        self.run_inputs: dict[tuple[str, DatasetKey], Row] = {}
        self.run_outputs: dict[tuple[str, DatasetKey], Row] = {}
        self.job_inputs: dict[tuple[str, str, DatasetKey], Row] = {}
        self.job_outputs: dict[tuple[str, str, DatasetKey], Row] = {}
        self.fields: dict[tuple[DatasetKey, str], Row] = {}
        self.derivations: dict[tuple[DatasetKey, str, DatasetKey, str, str, str], Row] = {}

    def add_job(self, job: Job, at: datetime) -> None:
        job_type = job_type_of(job)
        sql, description, owners = sql_of(job), description_of(job), owners_of(job)
        row: Row = {
            "namespace": job.namespace,
            "name": job.name,
            "type": job_type.job_type if job_type else None,
            "integration": job_type.integration if job_type else None,
            "processingType": job_type.processing_type if job_type else None,
            "jobTypeAt": at if job_type else None,
            "sql": sql,
            "sqlAt": at if sql else None,
            "description": description,
            "descriptionAt": at if description else None,
            "owners": owners,
            "ownersAt": at if owners else None,
        }
        current = self.jobs.get((job.namespace, job.name))
        if current is None:
            self.jobs[(job.namespace, job.name)] = row
            return
        _later(current, row, "jobTypeAt", ("type", "integration", "processingType"))
        _later(current, row, "sqlAt", ("sql",))
        _later(current, row, "descriptionAt", ("description",))
        _later(current, row, "ownersAt", ("owners",))

    def resolve(self, key: DatasetKey) -> DatasetKey:
        """A location the graph knows as an alias of a table-keyed dataset becomes that key."""
        return self.known_aliases.get(key.alias, key)

    def identify(self, dataset: Dataset) -> DatasetIdentity:
        identity = dataset.identity
        if identity.aliases:
            return identity
        return DatasetIdentity(key=self.resolve(identity.key), aliases=())

    def add_dataset(self, dataset: Dataset, at: datetime) -> DatasetIdentity:
        identity = self.identify(dataset)
        schema_fingerprint, schema = self.written.schema(dataset)
        source = data_source_of(dataset)
        row: Row = {
            "namespace": identity.key.namespace,
            "name": identity.key.name,
            "aliases": list(identity.aliases),
            "locations": [],
            "fields": list(schema.names) if schema is not None else None,
            "fieldTypes": list(schema.types) if schema is not None else None,
            "schemaAt": at if schema is not None else None,
            "dataSource": source,
            "dataSourceAt": at if source else None,
        }
        if identity.aliases:
            location = location_key(dataset.namespace, dataset.name)
            row["locations"] = [{"namespace": location.namespace, "name": location.name}]
        current = self.datasets.get(identity.key)
        if current is None:
            self.datasets[identity.key] = row
        else:
            current["aliases"] = sorted({*current["aliases"], *row["aliases"]})
            current["locations"] = [
                dict(pair)
                for pair in sorted(
                    {tuple(loc.items()) for loc in current["locations"] + row["locations"]}
                )
            ]
            _later(current, row, "schemaAt", ("fields", "fieldTypes"))
            _later(current, row, "dataSourceAt", ("dataSource",))
        if schema is not None and self._is_new_column_set(identity.key, schema_fingerprint):
            for name in schema.names:
                self._add_field(identity.key, name)
        return identity

    def _is_new_column_set(self, *identity: object) -> bool:
        """False when the columns a facet adds (its fingerprint and what it resolves against:
        the identity) are written or already in this batch."""
        if identity[-1] is None:  # no fingerprint: the cache is off
            return True
        column_set = hash(identity)
        if column_set in self.column_sets or self.written.holds(column_set):
            return False
        self.column_sets[column_set] = None
        return True

    def _add_field(self, key: DatasetKey, name: str) -> None:
        self.fields.setdefault(
            (key, name), {"namespace": key.namespace, "name": key.name, "field": name}
        )

    def add_job_edges(
        self,
        job: Job,
        inputs: list[DatasetKey],
        outputs: list[DatasetKey],
        at: datetime,
        run_id: str | None,
    ) -> None:
        for edges, keys in ((self.job_inputs, inputs), (self.job_outputs, outputs)):
            for key in keys:
                row = {
                    "jobNamespace": job.namespace,
                    "jobName": job.name,
                    "namespace": key.namespace,
                    "name": key.name,
                    "firstSeenAt": at,
                    "lastSeenAt": at,
                    "lastRunId": run_id,
                }
                current = edges.get((job.namespace, job.name, key))
                if current is None:
                    edges[(job.namespace, job.name, key)] = row
                    continue
                current["firstSeenAt"] = min(current["firstSeenAt"], at)
                if (at, run_id or "") >= (current["lastSeenAt"], current["lastRunId"] or ""):
                    current["lastSeenAt"], current["lastRunId"] = at, run_id

    def add_run_edges(
        self, run_id: str, inputs: list[DatasetKey], outputs: list[OutputDataset], at: datetime
    ) -> None:
        for key in inputs:
            self.run_inputs.setdefault(
                (run_id, key), {"runId": run_id, "namespace": key.namespace, "name": key.name}
            )
        for dataset in outputs:
            key = self.identify(dataset).key
            stats = statistics_of(dataset)
            row = {
                "runId": run_id,
                "namespace": key.namespace,
                "name": key.name,
                "at": at,
                "rowCount": stats.row_count if stats else None,
                "bytes": stats.size if stats else None,
                "statsAt": at if stats else None,
            }
            current = self.run_outputs.get((run_id, key))
            if current is None:
                self.run_outputs[(run_id, key)] = row
            else:
                current["at"] = max(current["at"], at)
                _later(current, row, "statsAt", ("rowCount", "bytes"))

    def add_column_lineage(
        self, job: Job, outputs: list[OutputDataset], resolve: Mapping[DatasetKey, DatasetKey]
    ) -> None:
        for dataset in outputs:
            target = self.identify(dataset).key
            fingerprint, locations = self.written.lineage_locations(dataset)
            if not locations:
                continue
            resolved = tuple(resolve.get(loc) or self.resolve(loc) for loc in locations)
            # Everything the facet writes follows from these.
            if not self._is_new_column_set(job.namespace, job.name, target, resolved, fingerprint):
                continue
            lineage = column_lineage_of(dataset)
            if lineage is None:
                continue
            for output_field, input_fields in lineage.fields.items():
                self._add_field(target, output_field)
                for ref in input_fields:
                    location = location_key(ref.namespace, ref.name)
                    source = resolve.get(location) or self.resolve(location)
                    self._add_field(source, ref.field)
                    self._add_derivation(job, source, ref.field, target, output_field, ref)

    def _add_derivation(
        self,
        job: Job,
        source: DatasetKey,
        source_field: str,
        target: DatasetKey,
        target_field: str,
        ref: Any,
    ) -> None:
        key = (source, source_field, target, target_field, job.namespace, job.name)
        row = self.derivations.setdefault(
            key,
            {
                "fromNamespace": source.namespace,
                "fromName": source.name,
                "fromField": source_field,
                "toNamespace": target.namespace,
                "toName": target.name,
                "toField": target_field,
                "jobNamespace": job.namespace,
                "jobName": job.name,
                "transformations": [],
            },
        )
        described = {_describe_transformation(t) for t in ref.transformations} - {""}
        row["transformations"] = sorted(set(row["transformations"]) | described)


def _describe_transformation(transformation: dict[str, Any]) -> str:
    kind, subtype = transformation.get("type"), transformation.get("subtype")
    parts = [part for part in (kind, subtype) if isinstance(part, str) and part]
    return "/".join(parts)


def _add_lineage(
    builder: _Builder,
    job: Job,
    inputs: list[InputDataset],
    outputs: list[OutputDataset],
    at: datetime,
    run_id: str | None,
) -> None:
    resolve: dict[DatasetKey, DatasetKey] = {}
    input_keys: list[DatasetKey] = []
    output_keys: list[DatasetKey] = []
    for keys, datasets in ((input_keys, inputs), (output_keys, outputs)):
        for dataset in datasets:
            identity = builder.add_dataset(dataset, at)
            keys.append(identity.key)
            resolve[location_key(dataset.namespace, dataset.name)] = identity.key
    builder.add_job(job, at)
    builder.add_job_edges(job, input_keys, output_keys, at, run_id)
    if run_id is not None:
        builder.add_run_edges(run_id, input_keys, outputs, at)
    builder.add_column_lineage(job, outputs, resolve)


def process_row(state: RunState) -> Row:
    parent = state.parent.value if state.parent and state.parent_run_id else None
    terminal = state.terminal
    return {
        "runId": state.run_id,
        "jobNamespace": state.job.value[0],
        "jobName": state.job.value[1],
        "state": state.state.value,
        "rank": TERMINAL_RANK[terminal.event_type] if terminal else 0,
        "startedAt": state.started_at,
        "endedAt": state.ended_at,
        "abandonedAt": state.abandoned_at if state.state is RunStateName.ABANDONED else None,
        "errorMessage": state.error_message,
        "firstEventAt": state.first_event_at,
        "lastEventAt": state.last_event_at,
        "runAt": state.started_at or state.first_event_at,
        "type": state.job_type.value if state.job_type else None,
        "processingType": state.processing_type.value if state.processing_type else None,
        "sparkVersion": state.engine_version.value if state.engine_version else None,
        "openlineageVersion": state.adapter_version.value if state.adapter_version else None,
        "producer": state.producer.value if state.producer else None,
        "nominalStartTime": state.nominal_start.value if state.nominal_start else None,
        "parentRunId": str(parent.run_id) if parent else None,
        "parentJobNamespace": parent.job_namespace if parent else None,
        "parentJobName": parent.job_name if parent else None,
    }


def location_aliases(events: Iterable[Event], written: WrittenColumns | None = None) -> list[str]:
    """Aliases of every location these events name, to look up in the graph before building."""
    written = WrittenColumns(0) if written is None else written
    aliases: set[str] = set()
    for event in events:
        datasets: list[Dataset] = (
            [event.dataset] if isinstance(event, DatasetEvent) else [*event.inputs, *event.outputs]
        )
        named_by_table: set[str] = set()
        for dataset in datasets:
            identity = dataset.identity
            named_by_table.update(identity.aliases)
            if not identity.aliases:
                aliases.add(identity.key.alias)
            _, locations = written.lineage_locations(dataset)
            aliases.update(location.alias for location in locations)
        aliases -= named_by_table
    return sorted(aliases)


def least_keys(pairs: Iterable[tuple[str, DatasetKey]]) -> dict[str, DatasetKey]:
    """Per alias, the least of the datasets it names: the graph's answer for an alias that
    several tables share (see `cypher.RESOLVE_ALIASES`), whatever order they came in."""
    least: dict[str, DatasetKey] = {}
    for alias, key in pairs:
        if alias not in least or key < least[alias]:
            least[alias] = key
    return least


def _table_aliases(events: Iterable[Event]) -> Iterable[tuple[str, DatasetKey]]:
    """Every alias a table-keyed dataset of these events has, with the table's key."""
    for event in events:
        datasets: list[Dataset] = (
            [event.dataset] if isinstance(event, DatasetEvent) else [*event.inputs, *event.outputs]
        )
        for dataset in datasets:
            identity = dataset.identity
            for alias in identity.aliases:
                yield alias, identity.key


def build_batch(
    events: Iterable[Event],
    states: Iterable[RunState],
    known_aliases: Mapping[str, DatasetKey] | None = None,
    written: WrittenColumns | None = None,
) -> GraphBatch:
    """Rows for every node and edge that these events and run summaries describe.

    `known_aliases` maps locations the graph already knows as aliases of a table-keyed dataset
    (see `location_aliases`) to that dataset's key. Column-lineage facets `written` holds are
    left out; the rows it holds are not (see `WrittenColumns.unwritten`).
    """
    events = list(events)
    # A location named by a table in this very batch resolves to that table, like one the graph
    # already knows: openlineage-spark names a CTAS output by its table in one event and only
    # by its location in the insert command's events, and both may share a batch.
    builder = _Builder(
        least_keys([*(known_aliases or {}).items(), *_table_aliases(events)]),
        WrittenColumns(0) if written is None else written,
    )
    for event in events:
        if isinstance(event, RunEvent):
            _add_lineage(
                builder,
                event.job,
                event.inputs,
                event.outputs,
                event.event_time,
                str(event.run.run_id),
            )
        elif isinstance(event, JobEvent):
            _add_lineage(builder, event.job, event.inputs, event.outputs, event.event_time, None)
        elif isinstance(event, DatasetEvent):
            builder.add_dataset(event.dataset, event.event_time)
    return GraphBatch(
        jobs=list(builder.jobs.values()),
        datasets=list(builder.datasets.values()),
        processes=[process_row(state) for state in states],
        run_inputs=list(builder.run_inputs.values()),
        run_outputs=list(builder.run_outputs.values()),
        job_inputs=list(builder.job_inputs.values()),
        job_outputs=list(builder.job_outputs.values()),
        fields=list(builder.fields.values()),
        derivations=list(builder.derivations.values()),
        column_sets=list(builder.column_sets),
    )
