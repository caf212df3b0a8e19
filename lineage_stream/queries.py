"""The analyst query library: named, parameterised, read-only Cypher over the lineage graph.

Every query is a Cypher constant and a function that runs it through a `Graph` (one managed read
transaction under a timeout). Traversals are bounded (`MAX_DEPTH` hops at most, `depth` chosen by
the caller) and every answer is capped by `limit`. `docs/queries.md` shows each constant with a
sample answer; a test checks that the documented Cypher is the code's.

Distances count Dataset -> Job -> Dataset hops (raw -> clean = 1) and are shortest distances,
found breadth-first, one statement per level inside one transaction, each node expanded once: so
cycles (a job reading and writing one table) neither loop nor repeat rows, the starting dataset
is never part of its own answer, and the cost stays linear in the edges crossed.
A dataset may be named by its key or by any alias (physical location, further symlinks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from difflib import SequenceMatcher
from typing import Any, Final, LiteralString, TypeVar

from neo4j import READ_ACCESS, Driver, ManagedTransaction, unit_of_work
from neo4j.exceptions import AuthError, ClientError, ServiceUnavailable, SessionExpired
from neo4j.time import Date, DateTime, Duration, Time

from lineage_stream.errors import GraphUnavailable, neo4j_unreachable
from lineage_stream.naming import location_key, normalise_name, normalise_namespace

Row = dict[str, Any]
T = TypeVar("T")

MAX_DEPTH: Final = 20
DEFAULT_DEPTH: Final = 5
DEFAULT_LIMIT: Final = 1000
DEFAULT_TIMEOUT_S: Final = 30.0
# Upstream datasets whose producers `failed_upstream` inspects, at most.
MAX_FEEDING: Final = 10_000

# Shared head of every dataset-rooted query: the dataset by its key, else by an alias. `$alias`
# is the normalised `namespace/name` (see `dataset_parameters`).
_ROOT_DATASET: Final = """
OPTIONAL MATCH (keyed:Dataset {namespace: $namespace, name: $name})
OPTIONAL MATCH (:DatasetAlias {alias: $alias})-[:ALIAS_OF]->(aliased:Dataset)
WITH coalesce(keyed, aliased) AS root
WHERE root IS NOT NULL
"""

RESOLVE_DATASET: Final = (
    _ROOT_DATASET
    + """
RETURN root.namespace AS namespace, root.name AS name, coalesce(root.aliases, []) AS aliases,
  COLLECT { MATCH (root)-[:HAS_FIELD]->(field:Field) RETURN field.field ORDER BY field.field }
    AS fields
"""
)

DATASET_ID: Final = (
    _ROOT_DATASET
    + """
RETURN elementId(root) AS id
"""
)

FIELD_ID: Final = (
    _ROOT_DATASET
    + """
MATCH (root)-[:HAS_FIELD]->(origin:Field {field: $field})
RETURN elementId(origin) AS id
"""
)

# One breadth-first step each: the datasets (fields) one hop from the frontier.
DOWNSTREAM_HOP: Final = """
UNWIND $frontier AS id
MATCH (source:Dataset) WHERE elementId(source) = id
MATCH (source)-[:CONSUMED_BY]->(:Job)-[:PRODUCES]->(reached:Dataset)
RETURN DISTINCT elementId(reached) AS id, reached.namespace AS namespace, reached.name AS name
"""

UPSTREAM_HOP: Final = """
UNWIND $frontier AS id
MATCH (source:Dataset) WHERE elementId(source) = id
MATCH (source)<-[:PRODUCES]-(:Job)<-[:CONSUMED_BY]-(reached:Dataset)
RETURN DISTINCT elementId(reached) AS id, reached.namespace AS namespace, reached.name AS name
"""

COLUMN_DOWNSTREAM_HOP: Final = """
UNWIND $frontier AS id
MATCH (source:Field) WHERE elementId(source) = id
MATCH (source)-[:DERIVES]->(reached:Field)
RETURN DISTINCT elementId(reached) AS id, reached.namespace AS namespace, reached.name AS name,
  reached.field AS field
"""

COLUMN_UPSTREAM_HOP: Final = """
UNWIND $frontier AS id
MATCH (source:Field) WHERE elementId(source) = id
MATCH (source)<-[:DERIVES]-(reached:Field)
RETURN DISTINCT elementId(reached) AS id, reached.namespace AS namespace, reached.name AS name,
  reached.field AS field
"""

# The jobs linking each reached node to the root or another reached node (`$affected`).
DOWNSTREAM_VIA: Final = """
UNWIND $reached AS id
MATCH (target:Dataset) WHERE elementId(target) = id
CALL (target) {
  MATCH (source:Dataset)-[:CONSUMED_BY]->(job:Job)-[:PRODUCES]->(target)
  WHERE elementId(source) IN $affected
  WITH DISTINCT job
  ORDER BY job.namespace, job.name
  RETURN collect({namespace: job.namespace, name: job.name}) AS via
}
RETURN id, via
"""

UPSTREAM_VIA: Final = """
UNWIND $reached AS id
MATCH (target:Dataset) WHERE elementId(target) = id
CALL (target) {
  MATCH (target)-[:CONSUMED_BY]->(job:Job)-[:PRODUCES]->(fed:Dataset)
  WHERE elementId(fed) IN $affected
  WITH DISTINCT job
  ORDER BY job.namespace, job.name
  RETURN collect({namespace: job.namespace, name: job.name}) AS via
}
RETURN id, via, NOT EXISTS { (:Job)-[:PRODUCES]->(target) } AS isSource
"""

COLUMN_DOWNSTREAM_VIA: Final = """
UNWIND $reached AS id
MATCH (target:Field) WHERE elementId(target) = id
CALL (target) {
  MATCH (source:Field)-[derives:DERIVES]->(target)
  WHERE elementId(source) IN $affected
  WITH DISTINCT derives.jobNamespace AS jobNamespace, derives.jobName AS jobName
  ORDER BY jobNamespace, jobName
  RETURN collect({namespace: jobNamespace, name: jobName}) AS via
}
RETURN id, via
"""

COLUMN_UPSTREAM_VIA: Final = """
UNWIND $reached AS id
MATCH (target:Field) WHERE elementId(target) = id
CALL (target) {
  MATCH (target)-[derives:DERIVES]->(fed:Field)
  WHERE elementId(fed) IN $affected
  WITH DISTINCT derives.jobNamespace AS jobNamespace, derives.jobName AS jobName
  ORDER BY jobNamespace, jobName
  RETURN collect({namespace: jobNamespace, name: jobName}) AS via
}
RETURN id, via
"""

LAST_WRITES: Final = (
    _ROOT_DATASET
    + """
MATCH (job:Job)-[:HAS_RUN]->(run:Process)-[output:OUTPUT_TO]->(root)
RETURN run.runId AS runId, job.namespace AS jobNamespace, job.name AS jobName,
  run.state AS state, run.startedAt AS startedAt, run.endedAt AS endedAt,
  run.durationMs AS durationMs, run.errorMessage AS errorMessage,
  output.rowCount AS rowCount, output.bytes AS bytes
ORDER BY coalesce(run.startedAt, run.firstEventAt) DESC, runId DESC
LIMIT $limit
"""
)

# `$fed`: the dataset and those upstream of it, each with its distance (the dataset's is 0).
FAILED_RUNS_FEEDING: Final = """
UNWIND $fed AS entry
MATCH (dataset:Dataset) WHERE elementId(dataset) = entry.id
MATCH (job:Job)-[:PRODUCES]->(dataset)
MATCH (job)-[:HAS_RUN]->(run:Process)
WHERE run.state IN ['FAIL', 'ABORT', 'ABANDONED']
  AND coalesce(run.endedAt, run.abandonedAt, run.lastEventAt)
    >= datetime() - duration({hours: $hours})
WITH job, run, min(entry.distance) + 1 AS distance
RETURN job.namespace AS jobNamespace, job.name AS jobName, distance, run.runId AS runId,
  run.state AS state, run.startedAt AS startedAt, run.endedAt AS endedAt,
  run.errorMessage AS errorMessage
ORDER BY distance, coalesce(run.endedAt, run.abandonedAt, run.lastEventAt) DESC, runId
LIMIT $limit
"""

JOB_RUNS: Final = """
MATCH (:Job {namespace: $jobNamespace, name: $jobName})-[:HAS_RUN]->(run:Process)
RETURN run.runId AS runId, run.state AS state, run.startedAt AS startedAt,
  run.endedAt AS endedAt, run.durationMs AS durationMs, run.errorMessage AS errorMessage
ORDER BY coalesce(run.startedAt, run.firstEventAt) DESC, runId DESC
LIMIT $limit
"""

JOB_RUN_STATS: Final = """
MATCH (:Job {namespace: $jobNamespace, name: $jobName})-[:HAS_RUN]->(run:Process)
WITH run
ORDER BY coalesce(run.startedAt, run.firstEventAt) DESC, run.runId DESC
LIMIT $limit
WITH run, CASE WHEN run.state = 'COMPLETE' THEN run.durationMs END AS completedMs
RETURN count(run) AS runs,
  count(CASE WHEN run.state = 'COMPLETE' THEN 1 END) AS completed,
  count(CASE WHEN run.state IN ['FAIL', 'ABORT'] THEN 1 END) AS failed,
  count(CASE WHEN run.state = 'ABANDONED' THEN 1 END) AS abandoned,
  count(CASE WHEN run.state = 'RUNNING' THEN 1 END) AS running,
  percentileDisc(completedMs, 0.5) AS p50DurationMs,
  percentileDisc(completedMs, 0.9) AS p90DurationMs,
  percentileDisc(completedMs, 0.99) AS p99DurationMs,
  max(completedMs) AS maxDurationMs
"""

UNFINISHED_RUNS: Final = """
UNWIND ['RUNNING', 'ABANDONED'] AS wanted
MATCH (job:Job)-[:HAS_RUN]->(run:Process {state: wanted})
RETURN run.state AS state, job.namespace AS jobNamespace, job.name AS jobName,
  run.runId AS runId, run.startedAt AS startedAt, run.lastEventAt AS lastEventAt
ORDER BY state DESC, coalesce(run.startedAt, run.firstEventAt) DESC, runId
LIMIT $limit
"""

INPUTS_AT: Final = (
    _ROOT_DATASET
    + """
MATCH (run:Process {state: 'COMPLETE'})-[:OUTPUT_TO]->(root)
WHERE run.endedAt <= coalesce(datetime($at), datetime())
WITH root, run
ORDER BY run.endedAt DESC, run.runId DESC
LIMIT 1
MATCH (job:Job)-[:HAS_RUN]->(run)
OPTIONAL MATCH (input:Dataset)-[:INPUT_TO]->(run)
CALL (input, run) {
  OPTIONAL MATCH (writer:Process {state: 'COMPLETE'})-[:OUTPUT_TO]->(input)
  WHERE writer.endedAt <= coalesce(run.startedAt, run.endedAt)
  WITH writer
  ORDER BY writer.endedAt DESC, writer.runId DESC
  LIMIT 1
  RETURN writer
}
WITH root, run, job, input, writer
ORDER BY input.namespace, input.name
RETURN root.namespace AS namespace, root.name AS name, run.runId AS runId,
  job.namespace AS jobNamespace, job.name AS jobName,
  run.startedAt AS startedAt, run.endedAt AS endedAt,
  collect(CASE WHEN input IS NOT NULL THEN {
    namespace: input.namespace, name: input.name,
    producedBy: writer.runId, producedAt: writer.endedAt
  } END) AS inputs
"""
)

DATASET_BY_ALIAS: Final = """
MATCH (:DatasetAlias {alias: $alias})-[:ALIAS_OF]->(dataset:Dataset)
RETURN dataset.namespace AS namespace, dataset.name AS name,
  coalesce(dataset.aliases, []) AS aliases
"""

DATASETS_BY_PREFIX: Final = """
MATCH (dataset:Dataset)
WHERE dataset.name STARTS WITH $prefix
  AND ($namespace IS NULL OR dataset.namespace = $namespace)
RETURN dataset.namespace AS namespace, dataset.name AS name,
  coalesce(dataset.aliases, []) AS aliases
ORDER BY name, namespace
LIMIT $limit
"""

JOB_EXISTS: Final = """
MATCH (job:Job {namespace: $jobNamespace, name: $jobName})
RETURN job.namespace AS namespace, job.name AS name, job.lastRunState AS lastRunState
"""

# Candidates for "did you mean": same namespace or sharing the name's last part; ranked in Python.
CLOSE_DATASETS: Final = """
MATCH (dataset:Dataset)
WHERE dataset.namespace = $namespace OR toLower(dataset.name) CONTAINS $fragment
RETURN dataset.namespace AS namespace, dataset.name AS name
LIMIT 500
"""

CLOSE_JOBS: Final = """
MATCH (job:Job)
WHERE job.namespace = $jobNamespace OR toLower(job.name) CONTAINS $fragment
RETURN job.namespace AS namespace, job.name AS name
LIMIT 500
"""


class Graph:
    """Read-only access to the lineage graph: each query is one read transaction with a timeout.

    Raises `GraphUnavailable` when Neo4j cannot be reached, refuses the credentials, or the query
    outlives its timeout.
    """

    def __init__(
        self, driver: Driver, database: str = "neo4j", timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self._driver = driver
        self._database = database
        self._timeout_s = timeout_s

    def rows(self, cypher: LiteralString, **parameters: Any) -> list[Row]:
        """The rows of one statement."""
        return self.read(lambda tx: _rows(tx, cypher, **parameters))

    def read(self, work: Callable[[ManagedTransaction], T]) -> T:
        """Run `work` in one read transaction under the timeout."""
        try:
            with self._driver.session(
                database=self._database, default_access_mode=READ_ACCESS
            ) as session:
                return session.execute_read(unit_of_work(timeout=self._timeout_s)(work))
        except AuthError as exc:
            raise GraphUnavailable(f"Neo4j refused the credentials: {exc.message}") from exc
        except (ServiceUnavailable, SessionExpired) as exc:
            raise neo4j_unreachable(exc) from exc
        except ClientError as exc:
            if exc.code and exc.code.startswith("Neo.ClientError.Transaction.TransactionTimedOut"):
                raise GraphUnavailable(
                    f"the query did not finish within its {self._timeout_s:g} s timeout"
                ) from exc
            raise


def _rows(tx: ManagedTransaction, cypher: LiteralString, **parameters: Any) -> list[Row]:
    return [_native(record.data()) for record in tx.run(cypher, parameters)]


@dataclass(frozen=True, slots=True)
class Traversal:
    """A breadth-first walk: the start node's id, one hop, and the jobs linking what it reached."""

    start: LiteralString
    hop: LiteralString
    via: LiteralString


DOWNSTREAM: Final = Traversal(DATASET_ID, DOWNSTREAM_HOP, DOWNSTREAM_VIA)
UPSTREAM: Final = Traversal(DATASET_ID, UPSTREAM_HOP, UPSTREAM_VIA)
COLUMN_DOWNSTREAM: Final = Traversal(FIELD_ID, COLUMN_DOWNSTREAM_HOP, COLUMN_DOWNSTREAM_VIA)
COLUMN_UPSTREAM: Final = Traversal(FIELD_ID, COLUMN_UPSTREAM_HOP, COLUMN_UPSTREAM_VIA)


def _breadth_first(
    tx: ManagedTransaction, hop: LiteralString, start: str, depth: int, limit: int
) -> list[Row]:
    """Nodes within `depth` hops of the start, each once at its shortest distance, nearest first
    (then by key), at most `limit`; never the start itself.

    One statement per level over the whole frontier, each node expanded once: the work is linear
    in the edges crossed, where a single variable-length or SHORTEST pattern enumerates trails
    (exponential in a graph with many paths between the same datasets).
    """
    seen = {start}
    frontier = [start]
    reached: list[Row] = []
    for distance in range(1, depth + 1):
        if not frontier or len(reached) >= limit:
            break
        level = [row for row in _rows(tx, hop, frontier=frontier) if row["id"] not in seen]
        level.sort(key=lambda row: tuple(value for key, value in row.items() if key != "id"))
        seen.update(row["id"] for row in level)
        reached += [{**row, "distance": distance} for row in level]
        frontier = [row["id"] for row in level]
    return reached[:limit]


def _traverse(graph: Graph, traversal: Traversal, start: Row, depth: int, limit: int) -> list[Row]:
    def work(tx: ManagedTransaction) -> list[Row]:
        origin = _rows(tx, traversal.start, **start)
        if not origin:
            return []
        reached = _breadth_first(tx, traversal.hop, origin[0]["id"], depth, limit)
        if not reached:
            return []
        ids = [row["id"] for row in reached]
        links = {
            link.pop("id"): link
            for link in _rows(tx, traversal.via, reached=ids, affected=[origin[0]["id"], *ids])
        }
        return [
            {**{k: v for k, v in row.items() if k != "id"}, **links[row["id"]]} for row in reached
        ]

    return graph.read(work)


def _native(value: Any) -> Any:
    """Neo4j temporal values as Python ones (zoned datetimes stay zoned), recursively."""
    if isinstance(value, DateTime | Date | Time):
        return value.to_native()
    if isinstance(value, Duration):
        return value.iso_format()
    if isinstance(value, dict):
        return {key: _native(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_native(item) for item in value]
    return value


def alias_of(path: str) -> str:
    """A physical path or `namespace/name` in the normalised form aliases are stored in."""
    return normalise_name(normalise_namespace(path))


def dataset_parameters(namespace: str, name: str) -> Row:
    """The `$namespace`, `$name` and `$alias` parameters of a dataset-rooted query."""
    return {"namespace": namespace, "name": name, "alias": location_key(namespace, name).alias}


def _check_bounds(depth: int, limit: int) -> None:
    if not 1 <= depth <= MAX_DEPTH:
        raise ValueError(f"depth must be between 1 and {MAX_DEPTH}, not {depth}")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")


def resolve_dataset(graph: Graph, namespace: str, name: str) -> Row | None:
    """The dataset a key or an alias names, with its aliases and field names; None when nothing
    matches.

    Example:
        >>> resolve_dataset(graph, "hdfs://nn", "/user/hive/warehouse/t1")
        {'namespace': 'hive://metastore:9083', 'name': 'default.t1',
         'aliases': ['hdfs://nn/user/hive/warehouse/t1'], 'fields': ['a', 'b']}
    """
    rows = graph.rows(RESOLVE_DATASET, **dataset_parameters(namespace, name))
    return rows[0] if rows else None


def downstream(
    graph: Graph,
    namespace: str,
    name: str,
    depth: int = DEFAULT_DEPTH,
    limit: int = DEFAULT_LIMIT,
) -> list[Row]:
    """Datasets downstream of a dataset within `depth` hops, nearest first, with the jobs linking
    each one to the root or another listed dataset (`via`).

    Example:
        >>> downstream(graph, "s3://lake", "/raw/orders", depth=2)
        [{'namespace': 's3://lake', 'name': '/clean/orders', 'distance': 1,
          'via': [{'namespace': 'etl', 'name': 'clean_orders'}]}, ...]
    """
    _check_bounds(depth, limit)
    return _traverse(graph, DOWNSTREAM, dataset_parameters(namespace, name), depth, limit)


def upstream(
    graph: Graph,
    namespace: str,
    name: str,
    depth: int = DEFAULT_DEPTH,
    limit: int = DEFAULT_LIMIT,
) -> list[Row]:
    """Datasets a dataset is derived from within `depth` hops, nearest first, with the jobs
    linking each one (`via`) and whether it is a root source (`isSource`: nothing produces it).

    Example:
        >>> upstream(graph, "s3://lake", "/gold/revenue", depth=3)
        [{'namespace': 's3://lake', 'name': '/clean/orders', 'distance': 1,
          'via': [{'namespace': 'etl', 'name': 'revenue'}], 'isSource': False}, ...]
    """
    _check_bounds(depth, limit)
    return _traverse(graph, UPSTREAM, dataset_parameters(namespace, name), depth, limit)


def column_downstream(
    graph: Graph,
    namespace: str,
    name: str,
    field: str,
    depth: int = DEFAULT_DEPTH,
    limit: int = DEFAULT_LIMIT,
) -> list[Row]:
    """Fields derived, transitively through DERIVES, from one field of a dataset; `distance`
    counts DERIVES edges and `via` names the jobs of those edges.

    Example:
        >>> column_downstream(graph, "s3://lake", "/raw/orders", "amount")
        [{'namespace': 's3://lake', 'name': '/clean/orders', 'field': 'amount', 'distance': 1,
          'via': [{'namespace': 'etl', 'name': 'clean_orders'}]}, ...]
    """
    _check_bounds(depth, limit)
    start = {**dataset_parameters(namespace, name), "field": field}
    return _traverse(graph, COLUMN_DOWNSTREAM, start, depth, limit)


def column_upstream(
    graph: Graph,
    namespace: str,
    name: str,
    field: str,
    depth: int = DEFAULT_DEPTH,
    limit: int = DEFAULT_LIMIT,
) -> list[Row]:
    """Fields one field of a dataset derives from, transitively (the reverse of
    `column_downstream`).

    Example:
        >>> column_upstream(graph, "s3://lake", "/gold/revenue", "total")
        [{'namespace': 's3://lake', 'name': '/clean/orders', 'field': 'amount', 'distance': 1,
          'via': [{'namespace': 'etl', 'name': 'revenue'}]}, ...]
    """
    _check_bounds(depth, limit)
    start = {**dataset_parameters(namespace, name), "field": field}
    return _traverse(graph, COLUMN_UPSTREAM, start, depth, limit)


def last_writes(graph: Graph, namespace: str, name: str, limit: int = 10) -> list[Row]:
    """The latest runs that wrote a dataset, newest first: job, state, times, error, statistics.

    Example:
        >>> last_writes(graph, "s3://lake", "/gold/revenue", limit=1)
        [{'runId': '0192...', 'jobNamespace': 'etl', 'jobName': 'revenue', 'state': 'FAIL',
          'startedAt': datetime(...), 'endedAt': datetime(...), 'durationMs': 60000,
          'errorMessage': 'Table not found', 'rowCount': None, 'bytes': None}]
    """
    _check_bounds(1, limit)
    return graph.rows(LAST_WRITES, **dataset_parameters(namespace, name), limit=limit)


def failed_upstream(
    graph: Graph,
    namespace: str,
    name: str,
    hours: int = 24,
    depth: int = DEFAULT_DEPTH,
    limit: int = DEFAULT_LIMIT,
) -> list[Row]:
    """Runs that failed, aborted or were abandoned in the last `hours`, of jobs that feed the
    dataset within `depth` hops (a job writing the dataset itself is at distance 1).

    Example:
        >>> failed_upstream(graph, "s3://lake", "/gold/revenue", hours=24)
        [{'jobNamespace': 'etl', 'jobName': 'clean_orders', 'distance': 2, 'runId': '0192...',
          'state': 'FAIL', 'startedAt': datetime(...), 'endedAt': datetime(...),
          'errorMessage': 'disk full'}]
    """
    _check_bounds(depth, limit)
    if hours < 1:
        raise ValueError(f"hours must be at least 1, not {hours}")

    def work(tx: ManagedTransaction) -> list[Row]:
        origin = _rows(tx, DATASET_ID, **dataset_parameters(namespace, name))
        if not origin:
            return []
        feeding = _breadth_first(tx, UPSTREAM_HOP, origin[0]["id"], depth - 1, MAX_FEEDING)
        fed = [{"id": origin[0]["id"], "distance": 0}] + [
            {"id": row["id"], "distance": row["distance"]} for row in feeding
        ]
        return _rows(tx, FAILED_RUNS_FEEDING, fed=fed, hours=hours, limit=limit)

    return graph.read(work)


def job_runs(graph: Graph, job_namespace: str, job_name: str, limit: int = 20) -> list[Row]:
    """A job's runs, newest first (by start, else first event).

    Example:
        >>> job_runs(graph, "etl", "revenue", limit=1)
        [{'runId': '0192...', 'state': 'COMPLETE', 'startedAt': datetime(...),
          'endedAt': datetime(...), 'durationMs': 60000, 'errorMessage': None}]
    """
    _check_bounds(1, limit)
    return graph.rows(JOB_RUNS, jobNamespace=job_namespace, jobName=job_name, limit=limit)


def job_run_stats(
    graph: Graph, job_namespace: str, job_name: str, limit: int = DEFAULT_LIMIT
) -> Row:
    """Over a job's latest `limit` runs: counts by outcome and the p50/p90/p99/max duration of
    the completed ones (failed runs stop early and would skew them).

    Example:
        >>> job_run_stats(graph, "etl", "revenue")
        {'runs': 30, 'completed': 28, 'failed': 1, 'abandoned': 1, 'running': 0,
         'p50DurationMs': 61000, 'p90DurationMs': 75000, 'p99DurationMs': 90000,
         'maxDurationMs': 90000}
    """
    _check_bounds(1, limit)
    rows = graph.rows(JOB_RUN_STATS, jobNamespace=job_namespace, jobName=job_name, limit=limit)
    return rows[0]


def unfinished_runs(graph: Graph, limit: int = 100) -> list[Row]:
    """Runs currently RUNNING, then ABANDONED ones (no terminal event within the run timeout),
    each newest first.

    Example:
        >>> unfinished_runs(graph)
        [{'state': 'RUNNING', 'jobNamespace': 'etl', 'jobName': 'revenue', 'runId': '0192...',
          'startedAt': datetime(...), 'lastEventAt': datetime(...)}, ...]
    """
    _check_bounds(1, limit)
    return graph.rows(UNFINISHED_RUNS, limit=limit)


def inputs_at(
    graph: Graph, namespace: str, name: str, at: datetime | str | None = None
) -> Row | None:
    """Point-in-time lineage: the completed run that produced the dataset's state at `at` (now
    when None; an RFC 3339 string or a zoned datetime), and its inputs, each with the completed
    run that had last written that input when the run started (`producedBy`, `producedAt`).
    None when no completed run had written the dataset by then.

    Example:
        >>> inputs_at(graph, "s3://lake", "/gold/revenue", "2026-01-01T06:00:00Z")
        {'namespace': 's3://lake', 'name': '/gold/revenue', 'runId': '0192...',
         'jobNamespace': 'etl', 'jobName': 'revenue', 'startedAt': datetime(...),
         'endedAt': datetime(...), 'inputs': [{'namespace': 's3://lake',
         'name': '/clean/orders', 'producedBy': '0192...', 'producedAt': datetime(...)}]}
    """
    moment = at.isoformat() if isinstance(at, datetime) else at
    rows = graph.rows(INPUTS_AT, **dataset_parameters(namespace, name), at=moment)
    return rows[0] if rows else None


def dataset_by_alias(graph: Graph, path: str) -> Row | None:
    """The dataset a physical path or other alias names (`s3a://` and a trailing `/` allowed).

    Example:
        >>> dataset_by_alias(graph, "hdfs://nn/user/hive/warehouse/t1/")
        {'namespace': 'hive://metastore:9083', 'name': 'default.t1',
         'aliases': ['hdfs://nn/user/hive/warehouse/t1']}
    """
    rows = graph.rows(DATASET_BY_ALIAS, alias=alias_of(path))
    return rows[0] if rows else None


def datasets_by_prefix(
    graph: Graph, prefix: str, namespace: str | None = None, limit: int = 100
) -> list[Row]:
    """Datasets whose name starts with `prefix` (in one namespace if given), by name.

    Example:
        >>> datasets_by_prefix(graph, "/clean/", namespace="s3://lake")
        [{'namespace': 's3://lake', 'name': '/clean/orders', 'aliases': []}]
    """
    _check_bounds(1, limit)
    return graph.rows(DATASETS_BY_PREFIX, prefix=prefix, namespace=namespace, limit=limit)


def job_exists(graph: Graph, job_namespace: str, job_name: str) -> bool:
    """Whether the graph has this job (`job_runs` cannot tell a runless job from none)."""
    return bool(graph.rows(JOB_EXISTS, jobNamespace=job_namespace, jobName=job_name))


def _ranked(candidates: list[Row], wanted: str, count: int) -> list[Row]:
    def similarity(row: Row) -> float:
        return SequenceMatcher(None, wanted, f"{row['namespace']}/{row['name']}").ratio()

    return sorted(candidates, key=lambda row: (-similarity(row), row["namespace"], row["name"]))[
        :count
    ]


def _fragment(name: str) -> str:
    """The last part of a dotted or slashed name, lowercased: what a typo most likely spares."""
    return name.replace("/", ".").rstrip(".").rsplit(".", 1)[-1].lower()


def close_datasets(graph: Graph, namespace: str, name: str, count: int = 5) -> list[Row]:
    """Datasets named most like `namespace`/`name`, for a "did you mean" message."""
    candidates = graph.rows(CLOSE_DATASETS, namespace=namespace, fragment=_fragment(name))
    return _ranked(candidates, f"{namespace}/{name}", count)


def close_jobs(graph: Graph, job_namespace: str, job_name: str, count: int = 5) -> list[Row]:
    """Jobs named most like `job_namespace`/`job_name`, for a "did you mean" message."""
    candidates = graph.rows(CLOSE_JOBS, jobNamespace=job_namespace, fragment=_fragment(job_name))
    return _ranked(candidates, f"{job_namespace}/{job_name}", count)


@dataclass(frozen=True, slots=True)
class NamedQuery:
    """A library query as `lineage-stream query NAME` runs it, and the Cypher statements it runs
    (by constant name) as docs/queries.md shows them."""

    run: Callable[..., Any]
    statements: Mapping[str, str]


def _named(run: Callable[..., Any], *statements: str) -> NamedQuery:
    return NamedQuery(run, {name: globals()[name] for name in statements})


QUERIES: Final[Mapping[str, NamedQuery]] = {
    "resolve_dataset": _named(resolve_dataset, "RESOLVE_DATASET"),
    "downstream": _named(downstream, "DATASET_ID", "DOWNSTREAM_HOP", "DOWNSTREAM_VIA"),
    "upstream": _named(upstream, "DATASET_ID", "UPSTREAM_HOP", "UPSTREAM_VIA"),
    "column_downstream": _named(
        column_downstream, "FIELD_ID", "COLUMN_DOWNSTREAM_HOP", "COLUMN_DOWNSTREAM_VIA"
    ),
    "column_upstream": _named(
        column_upstream, "FIELD_ID", "COLUMN_UPSTREAM_HOP", "COLUMN_UPSTREAM_VIA"
    ),
    "last_writes": _named(last_writes, "LAST_WRITES"),
    "failed_upstream": _named(failed_upstream, "DATASET_ID", "UPSTREAM_HOP", "FAILED_RUNS_FEEDING"),
    "job_runs": _named(job_runs, "JOB_RUNS"),
    "job_run_stats": _named(job_run_stats, "JOB_RUN_STATS"),
    "unfinished_runs": _named(unfinished_runs, "UNFINISHED_RUNS"),
    "inputs_at": _named(inputs_at, "INPUTS_AT"),
    "dataset_by_alias": _named(dataset_by_alias, "DATASET_BY_ALIAS"),
    "datasets_by_prefix": _named(datasets_by_prefix, "DATASETS_BY_PREFIX"),
}
