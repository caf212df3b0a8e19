"""A seeded, realistic Spark fleet of OpenLineage events, keyed as openlineage-spark keys them.

Calibrated on the real openlineage-spark 1.23 Dataproc events in ../shared/openlineage-samples:
an APPLICATION run (START ~3 KB, COMPLETE ~2 KB, no datasets) with SQL_JOB child runs parented
to it (START, RUNNING with `spark_jobDetails` and `outputStatistics`, COMPLETE or FAIL; 4-9 KB
for a few columns, growing with schema width and column lineage, as the 39 KB CLL sample does).

Shape of the fleet:
- application templates (a scheduled Spark job) are re-run many times; each run of a template
  executes the same SQL plans, so the same jobs and datasets recur as they do in production;
- each template has 1-20 SQL executions, each reading 1-10 and writing 1-3 datasets drawn from a
  pool whose popularity follows a Zipf law (a few hot tables read by everyone);
- datasets have 5-200 columns (log-uniform); warehouse datasets carry a TABLE symlink;
- outputs carry column lineage on START and COMPLETE (inputFields name physical locations);
- a small tail of events carries a 1-5 MB `spark.logicalPlan` facet;
- applications overlap in time (Poisson arrivals), so a topic interleaves many runs.

Pure: no I/O, no clock; the same seed gives the same bytes.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import uuid
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

ADAPTER_VERSION = "1.23.0"
SPARK_VERSION = "3.5.1"
PRODUCER = f"https://github.com/OpenLineage/OpenLineage/tree/{ADAPTER_VERSION}/integration/spark"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET_SCHEMA = "https://openlineage.io/spec/facets/{}.json#/$defs/{}"
# A fixed epoch keeps the output independent of the clock (and well inside parse's bounds).
FLEET_EPOCH = datetime(2025, 6, 1, tzinfo=UTC)
JOB_NAMESPACE = "default"
# Chance of one more input/output; gives a mean of about 2.4 inputs of at most 10.
SKEWED_COUNT_CONTINUE = 0.55

PLAN_NODES = (
    ("execute_insert_into_hadoop_fs_relation_command", 0.35),
    ("execute_insert_into_hive_table", 0.2),
    ("execute_create_hive_table_as_select_command", 0.1),
    ("append_data", 0.1),
    ("overwrite_by_expression", 0.05),
    ("execute_save_into_data_source_command", 0.1),
    ("merge_into_command_edge", 0.1),
)
COLUMN_TYPES = ("string", "long", "integer", "double", "timestamp", "date", "boolean", "decimal")
TRANSFORMATIONS = (
    ("DIRECT", "IDENTITY", 0.6),
    ("DIRECT", "TRANSFORMATION", 0.25),
    ("DIRECT", "AGGREGATION", 0.1),
    ("INDIRECT", "FILTER", 0.05),
)
WORDS = (
    "orders",
    "customers",
    "events",
    "sessions",
    "payments",
    "clicks",
    "inventory",
    "invoices",
    "users",
    "accounts",
    "shipments",
    "refunds",
    "campaigns",
    "ledger",
    "metrics",
    "devices",
    "sensors",
    "trades",
    "quotes",
    "positions",
    "claims",
    "policies",
    "visits",
    "carts",
    "products",
    "reviews",
    "emails",
    "alerts",
    "logs",
    "audits",
)


@dataclass(frozen=True)
class FleetProfile:
    """Knobs of the fleet; the defaults are the realistic mix the benchmark uses."""

    templates: int = 400
    datasets: int = 3000
    zipf_exponent: float = 1.1
    min_children: int = 1
    max_children: int = 20
    max_inputs: int = 10
    max_outputs: int = 3
    min_columns: int = 5
    max_columns: int = 200
    running_events: tuple[int, int] = (0, 2)
    fail_rate: float = 0.04
    large_event_rate: float = 0.002
    large_event_bytes: tuple[int, int] = (1_000_000, 5_000_000)
    symlink_rate: float = 0.6
    column_lineage_rate: float = 0.8
    applications_per_hour: float = 3600.0


@dataclass(frozen=True, slots=True)
class GeneratedEvent:
    key: bytes
    value: bytes
    run_id: str
    event_type: str
    event_time: datetime
    is_application: bool


@dataclass(frozen=True, slots=True)
class _DatasetSpec:
    namespace: str
    name: str
    columns: tuple[tuple[str, str], ...]
    symlink: tuple[str, str] | None


@dataclass(frozen=True, slots=True)
class _PlanSpec:
    job_name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    lineage_seed: int | None
    """Seeds the plan's column lineage, or None for a plan without: a job's SQL is the same on
    every run, and so is the columnLineage facet openlineage-spark derives from its plan."""


@dataclass(frozen=True, slots=True)
class _TemplateSpec:
    app_name: str
    job_name: str
    plans: tuple[_PlanSpec, ...]


@dataclass
class _Catalog:
    datasets: list[_DatasetSpec] = field(default_factory=list)
    templates: list[_TemplateSpec] = field(default_factory=list)
    column_lineage: dict[tuple[str, tuple[int, ...], tuple[int, ...], int], dict[str, Any]] = field(
        default_factory=dict
    )


def _facet(schema: str, **body: Any) -> dict[str, Any]:
    name = schema.split("/")[-1]
    return {"_producer": PRODUCER, "_schemaURL": FACET_SCHEMA.format(schema, name), **body}


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


def _uuid7(rng: random.Random, at: datetime) -> str:
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64)
    value |= (0b10 << 62) | rng.getrandbits(62)
    return str(uuid.UUID(int=value))


def _dataset(rng: random.Random, index: int, profile: FleetProfile) -> _DatasetSpec:
    word = f"{rng.choice(WORDS)}_{index}"
    width = _log_uniform(rng, profile.min_columns, profile.max_columns)
    columns = tuple((f"{rng.choice(WORDS)}_{c}", rng.choice(COLUMN_TYPES)) for c in range(width))
    kind = rng.random()
    if kind < profile.symlink_rate:
        cluster = f"cluster-{index % 7}"
        schema = f"db_{index % 23}"
        return _DatasetSpec(
            f"hdfs://{cluster}-m",
            f"/user/hive/warehouse/{schema}.db/{word}",
            columns,
            (f"hive://{cluster}-m:9083", f"{schema}.{word}"),
        )
    if kind < profile.symlink_rate + 0.25:
        return _DatasetSpec(f"s3://lake-{index % 5}", f"/raw/{word}", columns, None)
    if kind < profile.symlink_rate + 0.35:
        return _DatasetSpec("bigquery", f"analytics.mart_{index % 11}.{word}", columns, None)
    return _DatasetSpec("postgres://db.internal:5432", f"app.public.{word}", columns, None)


def _skewed_count(rng: random.Random, most: int) -> int:
    """1..most, geometric: most SQL executions touch one or two datasets, a few touch many."""
    count = 1
    while count < most and rng.random() < SKEWED_COUNT_CONTINUE:
        count += 1
    return count


def _zipf_cumulative(count: int, exponent: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank**exponent) for rank in range(1, count + 1)))


def _draw_distinct(
    rng: random.Random, cumulative: list[float], count: int, exclude: set[int]
) -> tuple[int, ...]:
    chosen: list[int] = []
    total = cumulative[-1]
    while len(chosen) < count:
        index = bisect_left(cumulative, rng.random() * total)
        if index not in exclude and index not in chosen:
            chosen.append(index)
    return tuple(chosen)


def _catalog(rng: random.Random, profile: FleetProfile) -> _Catalog:
    catalog = _Catalog()
    catalog.datasets = [_dataset(rng, i, profile) for i in range(profile.datasets)]
    # Popularity rank is independent of the dataset's kind.
    popularity = list(range(profile.datasets))
    rng.shuffle(popularity)
    cumulative = _zipf_cumulative(profile.datasets, profile.zipf_exponent)
    plan_names = [name for name, _ in PLAN_NODES]
    plan_weights = [weight for _, weight in PLAN_NODES]
    for t in range(profile.templates):
        app_name = f"{rng.choice(WORDS)}_{rng.choice(WORDS)}_etl_{t}"
        plans = []
        for _ in range(rng.randint(profile.min_children, profile.max_children)):
            inputs = _draw_distinct(rng, cumulative, _skewed_count(rng, profile.max_inputs), set())
            outputs = _draw_distinct(
                rng, cumulative, _skewed_count(rng, profile.max_outputs), set(inputs)
            )
            target = catalog.datasets[popularity[outputs[0]]].name.rsplit("/", 1)[-1]
            node = rng.choices(plan_names, plan_weights)[0]
            plans.append(
                _PlanSpec(
                    job_name=f"{app_name}.{node}.{target.replace('.', '_')}",
                    inputs=tuple(popularity[i] for i in inputs),
                    outputs=tuple(popularity[i] for i in outputs),
                    lineage_seed=(
                        rng.getrandbits(64) if rng.random() < profile.column_lineage_rate else None
                    ),
                )
            )
        catalog.templates.append(_TemplateSpec(app_name, app_name, tuple(plans)))
    return catalog


def _dataset_facets(spec: _DatasetSpec) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "dataSource": _facet(
            "1-0-1/DatasourceDatasetFacet", name=spec.namespace, uri=spec.namespace
        ),
        "schema": _facet(
            "1-1-1/SchemaDatasetFacet",
            fields=[{"name": name, "type": kind} for name, kind in spec.columns],
        ),
    }
    if spec.symlink is not None:
        facets["symlinks"] = _facet(
            "1-0-1/SymlinksDatasetFacet",
            identifiers=[{"namespace": spec.symlink[0], "name": spec.symlink[1], "type": "TABLE"}],
        )
    return facets


def _column_lineage(
    rng: random.Random, output: _DatasetSpec, inputs: list[_DatasetSpec]
) -> dict[str, Any]:
    kinds = [(kind, subtype) for kind, subtype, _ in TRANSFORMATIONS]
    weights = [weight for _, _, weight in TRANSFORMATIONS]
    fields: dict[str, Any] = {}
    for column, _ in output.columns:
        refs = []
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            source = rng.choice(inputs)
            kind, subtype = rng.choices(kinds, weights)[0]
            refs.append(
                {
                    "namespace": source.namespace,
                    "name": source.name,
                    "field": rng.choice(source.columns)[0],
                    "transformations": [
                        {"type": kind, "subtype": subtype, "description": "", "masking": False}
                    ],
                }
            )
        fields[column] = {"inputFields": refs}
    return _facet("1-2-0/ColumnLineageDatasetFacet", fields=fields)


def _run_facets(app_name: str, app_id: str) -> dict[str, Any]:
    return {
        "spark_properties": _facet(
            "2-0-2/OpenLineage",
            properties={"spark.master": "yarn", "spark.app.name": app_name},
        ),
        "processing_engine": _facet(
            "1-1-1/ProcessingEngineRunFacet",
            version=SPARK_VERSION,
            name="spark",
            openlineageAdapterVersion=ADAPTER_VERSION,
        ),
        "spark_applicationDetails": _facet(
            "1-0-0/SparkApplicationDetailsRunFacet",
            master="yarn",
            appName=app_name,
            applicationId=app_id,
            deployMode="cluster",
            driverHost="10.128.0.12",
            userName="spark",
        ),
    }


def _job(name: str, job_type: str, sql: str | None) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "jobType": _facet(
            "2-0-3/JobTypeJobFacet",
            processingType="BATCH" if job_type == "SQL_JOB" else "NONE",
            integration="SPARK",
            jobType=job_type,
        )
    }
    if sql is not None:
        facets["sql"] = _facet("1-0-1/SQLJobFacet", query=sql)
    return {"namespace": JOB_NAMESPACE, "name": name, "facets": facets}


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Application:
    """Events of one application run, produced in eventTime order."""

    def __init__(
        self,
        rng: random.Random,
        catalog: _Catalog,
        template: _TemplateSpec,
        started: datetime,
        profile: FleetProfile,
    ) -> None:
        self.rng = rng
        self.catalog = catalog
        self.template = template
        self.profile = profile
        self.run_id = _uuid7(rng, started)
        self.app_id = f"application_{int(started.timestamp())}_{rng.randint(1, 9999):04d}"
        self.key = f"run:{JOB_NAMESPACE}/{template.job_name}".encode()
        self.events = self._events(started)

    def _events(self, started: datetime) -> list[GeneratedEvent]:
        rng, events = self.rng, []
        events.append(self._app_event("START", started))
        at = started + timedelta(seconds=rng.uniform(2, 15))
        for plan in self.template.plans:
            events.extend(self._plan_events(plan, at))
            at += timedelta(seconds=rng.uniform(0.5, 30))
        events.append(self._app_event("COMPLETE", at + timedelta(seconds=rng.uniform(0.2, 3))))
        events.sort(key=lambda e: e.event_time)
        return events

    def _document(
        self, event_type: str, at: datetime, run_id: str, job: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "eventTime": _stamp(at),
            "producer": PRODUCER,
            "schemaURL": SCHEMA_URL,
            "eventType": event_type,
            "run": {"runId": run_id, "facets": _run_facets(self.template.app_name, self.app_id)},
            "job": job,
            "inputs": [],
            "outputs": [],
        }

    def _app_event(self, event_type: str, at: datetime) -> GeneratedEvent:
        document = self._document(
            event_type, at, self.run_id, _job(self.template.job_name, "APPLICATION", None)
        )
        return self._finish(document, at, is_application=True)

    def _plan_events(self, plan: _PlanSpec, started: datetime) -> list[GeneratedEvent]:
        rng, profile = self.rng, self.profile
        run_id = _uuid7(rng, started)
        inputs = [self.catalog.datasets[i] for i in plan.inputs]
        outputs = [self.catalog.datasets[i] for i in plan.outputs]
        sql = f"INSERT INTO {outputs[0].name.rsplit('/', 1)[-1]} SELECT * FROM " + " JOIN ".join(
            d.name.rsplit("/", 1)[-1] for d in inputs
        )
        job = _job(plan.job_name, "SQL_JOB", sql)
        parent = _facet(
            "1-1-0/ParentRunFacet",
            run={"runId": self.run_id},
            job={"namespace": JOB_NAMESPACE, "name": self.template.job_name},
            root={
                "run": {"runId": self.run_id},
                "job": {"namespace": JOB_NAMESPACE, "name": self.template.job_name},
            },
        )
        lineage = (
            {
                id(o): self._column_lineage(plan, plan.lineage_seed, position, inputs)
                for position, o in enumerate(outputs)
            }
            if plan.lineage_seed is not None
            else {}
        )
        failed = rng.random() < profile.fail_rate
        times = [started]
        for _ in range(rng.randint(*profile.running_events)):
            times.append(times[-1] + timedelta(seconds=rng.uniform(0.2, 20)))
        times.append(times[-1] + timedelta(seconds=rng.uniform(0.2, 10)))
        kinds = ["START"] + ["RUNNING"] * (len(times) - 2) + ["FAIL" if failed else "COMPLETE"]
        events = []
        for kind, at in zip(kinds, times, strict=True):
            document = self._document(kind, at, run_id, job)
            document["run"]["facets"]["parent"] = parent
            document["inputs"] = [
                {
                    "namespace": d.namespace,
                    "name": d.name,
                    "facets": _dataset_facets(d),
                    "inputFacets": {},
                }
                for d in inputs
            ]
            document["outputs"] = [
                self._output(d, kind, lineage.get(id(d)), job_id=len(events)) for d in outputs
            ]
            if kind == "RUNNING":
                document["run"]["facets"]["spark_jobDetails"] = _facet(
                    "1-0-0/SparkJobDetailsRunFacet", jobId=len(events), jobDescription=sql[:80]
                )
            if kind == "FAIL":
                document["run"]["facets"]["errorMessage"] = _facet(
                    "1-0-0/ErrorMessageRunFacet",
                    message="Job aborted due to stage failure: ExecutorLostFailure",
                    programmingLanguage="JAVA",
                    stackTrace="org.apache.spark.SparkException: Job aborted\n\tat ..." * 20,
                )
            if rng.random() < profile.large_event_rate:
                document["run"]["facets"]["spark.logicalPlan"] = self._logical_plan()
            events.append(self._finish(document, at, is_application=False))
        return events

    def _column_lineage(
        self, plan: _PlanSpec, seed: int, position: int, inputs: list[_DatasetSpec]
    ) -> dict[str, Any]:
        # Keyed by what fixes the SQL, not by plan: two plans may only differ in their seed.
        key = (plan.job_name, plan.inputs, plan.outputs, position)
        known = self.catalog.column_lineage.get(key)
        if known is None:
            output = self.catalog.datasets[plan.outputs[position]]
            rng = random.Random(seed + position)
            known = self.catalog.column_lineage[key] = _column_lineage(rng, output, inputs)
        return known

    def _output(
        self, spec: _DatasetSpec, kind: str, lineage: dict[str, Any] | None, job_id: int
    ) -> dict[str, Any]:
        facets = _dataset_facets(spec)
        if lineage is not None and kind in ("START", "COMPLETE"):
            facets["columnLineage"] = lineage
        output_facets: dict[str, Any] = {}
        if kind == "RUNNING":
            output_facets["outputStatistics"] = _facet(
                "1-0-2/OutputStatisticsOutputDatasetFacet",
                rowCount=self.rng.randint(0, 10**8),
                size=self.rng.randint(0, 10**11),
            )
        return {
            "namespace": spec.namespace,
            "name": spec.name,
            "facets": facets,
            "outputFacets": output_facets,
        }

    def _logical_plan(self) -> dict[str, Any]:
        low, high = self.profile.large_event_bytes
        target = self.rng.randint(low, high)
        node = {"class": "org.apache.spark.sql.catalyst.plans.logical.Project", "num-children": 1}
        unit = len(orjson.dumps(node)) + 1
        return _facet("1-0-0/LogicalPlanFacet", plan=[node] * (target // unit))

    def _finish(
        self, document: dict[str, Any], at: datetime, *, is_application: bool
    ) -> GeneratedEvent:
        # The wire carries milliseconds; so does the metadata, to compare with parsed events.
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)
        return GeneratedEvent(
            key=self.key,
            value=orjson.dumps(document),
            run_id=document["run"]["runId"],
            event_type=document["eventType"],
            event_time=at,
            is_application=is_application,
        )


def fleet(seed: int, events: int, profile: FleetProfile | None = None) -> Iterator[GeneratedEvent]:
    """`events` events of an overlapping fleet of Spark applications, in eventTime order.

    The stream ends after exactly `events` events, so the last applications are cut short, as
    any window of a live topic is.
    """
    profile = profile or FleetProfile()
    rng = random.Random(seed)
    catalog = _catalog(rng, profile)
    mean_gap_s = 3600.0 / profile.applications_per_hour
    pending: list[tuple[datetime, int, int, _Application]] = []
    next_start = FLEET_EPOCH
    counter = itertools.count()
    emitted = 0
    while emitted < events:
        while not pending or next_start <= pending[0][0]:
            template = catalog.templates[rng.randrange(len(catalog.templates))]
            app = _Application(rng, catalog, template, next_start, profile)
            heapq.heappush(pending, (app.events[0].event_time, next(counter), 0, app))
            next_start += timedelta(seconds=rng.expovariate(1 / mean_gap_s))
        _, order, position, app = heapq.heappop(pending)
        yield app.events[position]
        emitted += 1
        if position + 1 < len(app.events):
            following = app.events[position + 1]
            heapq.heappush(pending, (following.event_time, order, position + 1, app))
