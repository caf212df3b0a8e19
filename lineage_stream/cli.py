"""The `lineage-stream` command."""

from __future__ import annotations

import inspect
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from difflib import get_close_matches
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import orjson
import typer
from neo4j.exceptions import ClientError
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lineage_stream import queries
from lineage_stream.errors import ConfigurationError, GraphUnavailable, neo4j_unreachable
from lineage_stream.naming import DatasetKey
from lineage_stream.settings import Settings

cli = typer.Typer(
    help="Stream OpenLineage events from Kafka into a Neo4j lineage graph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
log = logging.getLogger(__name__)

# Fail fast when Neo4j is unreachable: the analyst gets an error in seconds, not 30 s retries.
CONNECT_TIMEOUT_S = 4.0
RETRY_WINDOW_S = 1.0


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"LINEAGE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from exc


@cli.command()
def worker() -> None:
    """Run the stream worker: consume LINEAGE_TOPIC, pair runs, write Neo4j."""
    from lineage_stream.app import run_worker
    from lineage_stream.kafka_admin import prepare_topics
    from lineage_stream.logs import configure_logging
    from lineage_stream.schema import ensure_schema

    settings = _settings()
    configure_logging(settings)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create LINEAGE_DATA_DIR {settings.data_dir}: {exc.strerror}"
        ) from exc
    partitions = prepare_topics(settings)
    ensure_schema(settings)
    log.info(
        "lineage-stream worker: %s (%d partitions) -> %s [%s], group %s",
        settings.topic,
        partitions,
        settings.neo4j_uri,
        settings.neo4j_database,
        settings.consumer_group,
        extra={"topic": settings.topic, "partitions": partitions},
    )
    run_worker(settings, partitions)


def spark_key(document: dict[str, Any]) -> bytes | None:
    """The key openlineage-spark gives an event: `run:{rootJobNamespace}/{rootJobName}`."""
    run, job = document.get("run"), document.get("job")
    if not isinstance(run, dict) or not isinstance(job, dict):
        return None
    parent = (run.get("facets") or {}).get("parent") or {}
    root_job = (parent.get("root") or {}).get("job") or parent.get("job") or job
    return f"run:{root_job.get('namespace')}/{root_job.get('name')}".encode()


def _read_events(paths: list[Path]) -> Iterator[bytes]:
    for path in paths:
        source = sys.stdin.buffer if str(path) == "-" else path.open("rb")
        with source:
            data = source.read()
        if path.suffix == ".json":
            yield data.strip()
            continue
        yield from (line for line in data.splitlines() if line.strip())


def demo_events() -> list[Path]:
    return sorted((Path(__file__).parent / "demo").glob("*.ndjson"))


@cli.command()
def publish(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Files of events (.json: one; otherwise one per line); - is stdin."),
    ] = None,
    demo: Annotated[bool, typer.Option(help="Publish the bundled Spark demo events.")] = False,
    keyed: Annotated[
        bool, typer.Option(help="Key events as openlineage-spark does (run:{ns}/{name}).")
    ] = True,
) -> None:
    """Publish OpenLineage events to LINEAGE_TOPIC (for demos and tests)."""
    from confluent_kafka import Producer

    from lineage_stream.kafka_admin import client_config

    settings = _settings()
    sources = list(paths or []) + (demo_events() if demo else [])
    if not sources:
        raise ConfigurationError("nothing to publish: give files or --demo")
    producer = Producer(
        {
            **client_config(settings),
            "message.max.bytes": 32 * 1024 * 1024,
            "compression.type": "zstd",
        }
    )
    count = 0
    for raw in _read_events(sources):
        try:
            key = spark_key(orjson.loads(raw)) if keyed else None
        except orjson.JSONDecodeError:
            key = None
        producer.produce(settings.topic, value=raw, key=key)
        producer.poll(0)
        count += 1
    remaining = producer.flush(30)
    if remaining:
        raise ConfigurationError(
            f"{remaining} events were not delivered to {settings.kafka_bootstrap_servers}"
        )
    err.print(f"published {count} events to {settings.topic}")


@cli.command()
def replay(
    source: Annotated[
        Path, typer.Argument(help="Newline-delimited OpenLineage events; - reads stdin.")
    ],
) -> None:
    """Write NDJSON OpenLineage events to Neo4j through the worker's pairing and writer."""
    from lineage_stream.replay import replay_file

    settings = _settings()
    if str(source) != "-" and not source.is_file():
        raise ConfigurationError(f"{source} is not a readable file")
    report = replay_file(settings, source, err)
    err.print(
        f"replayed {report.events} events of {len(report.runs)} runs into "
        f"{settings.neo4j_uri} [{settings.neo4j_database}]; "
        f"{len(report.invalid)} invalid lines skipped",
        markup=False,
        soft_wrap=True,
    )


@cli.command()
def prune(
    older_than_days: Annotated[
        float, typer.Option(min=0, help="Delete finished runs that ended more than this ago.")
    ],
    keep_runs: Annotated[
        int, typer.Option(min=1, help="Always keep this many latest runs of every job.")
    ] = 10,
    batch_size: Annotated[int, typer.Option(min=1, help="Runs deleted per transaction.")] = 1000,
) -> None:
    """Delete old Process nodes, keeping each job's latest runs and every dataset's last writer."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from neo4j import AsyncGraphDatabase
    from neo4j.exceptions import AuthError, ServiceUnavailable

    from lineage_stream.retention import prune_processes

    settings = _settings()
    auth = (settings.neo4j_user, settings.neo4j_password.get_secret_value())

    async def prune_now() -> int:
        async with AsyncGraphDatabase.driver(
            settings.neo4j_uri, auth=auth, notifications_min_severity="OFF"
        ) as driver:
            return await prune_processes(
                driver,
                settings.neo4j_database,
                now=datetime.now(UTC),
                older_than=timedelta(days=older_than_days),
                keep_runs=keep_runs,
                batch_size=batch_size,
            )

    try:
        pruned = asyncio.run(prune_now())
    except AuthError as exc:
        raise GraphUnavailable(f"Neo4j at {settings.neo4j_uri}: {exc}") from exc
    except ServiceUnavailable as exc:
        raise neo4j_unreachable(exc, settings.neo4j_uri) from exc
    err.print(
        f"pruned {pruned} runs older than {older_than_days:g} days "
        f"(kept the latest {keep_runs} per job and every dataset's last writer)",
        soft_wrap=True,
    )


class Direction(StrEnum):
    downstream = "downstream"
    upstream = "upstream"


@contextmanager
def _graph(timeout_s: float) -> Iterator[queries.Graph]:
    """The graph from LINEAGE_NEO4J_*, failing fast: an unreachable Neo4j is reported in
    seconds rather than retried for the driver's default 30 s."""
    from neo4j import GraphDatabase

    settings = _settings()
    auth = (settings.neo4j_user, settings.neo4j_password.get_secret_value())
    try:
        driver = GraphDatabase.driver(
            settings.neo4j_uri,
            auth=auth,
            connection_timeout=CONNECT_TIMEOUT_S,
            connection_acquisition_timeout=CONNECT_TIMEOUT_S,
            max_transaction_retry_time=RETRY_WINDOW_S,
            notifications_min_severity="OFF",
        )
    except ValueError as exc:
        raise ConfigurationError(f"LINEAGE_NEO4J_URI={settings.neo4j_uri}: {exc}") from exc
    with driver:
        yield queries.Graph(driver, settings.neo4j_database, timeout_s)


def _label(row: Mapping[str, Any]) -> str:
    """A dataset as `namespace/name` (its alias form), a field as `namespace/name#field`."""
    alias = DatasetKey(row["namespace"], row["name"]).alias
    return f"{alias}#{row['field']}" if row.get("field") else alias


def _table(title: str, columns: Iterable[str]) -> Table:
    """Narrow terminals fold long cells (run ids, times) rather than cut them."""
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def _did_you_mean(what: str, matches: list[dict[str, Any]]) -> None:
    err.print(f"no {what} matched")
    if matches:
        err.print("close matches:")
        for match in matches:
            err.print(f"  {match['namespace']} {match['name']}", markup=False, highlight=False)


def _resolve_or_exit(graph: queries.Graph, namespace: str, name: str) -> dict[str, Any]:
    root = queries.resolve_dataset(graph, namespace, name)
    if root is None:
        _did_you_mean(
            f"dataset {namespace} {name} (by key or alias)",
            queries.close_datasets(graph, namespace, name),
        )
        raise typer.Exit(1)
    return root


def impact_answer(
    root: Mapping[str, Any], rows: list[dict[str, Any]], column: str | None
) -> dict[str, Any]:
    """The `impact --json` document: root, datasets with their distance, linking jobs."""
    jobs = sorted({(job["namespace"], job["name"]) for row in rows for job in row["via"]})
    answer: dict[str, Any] = {"root": {"namespace": root["namespace"], "name": root["name"]}}
    if column is None:
        answer["datasets"] = [
            {"namespace": r["namespace"], "name": r["name"], "distance": r["distance"]}
            for r in rows
        ]
    else:
        answer["root"]["field"] = column
        answer["fields"] = [
            {k: r[k] for k in ("namespace", "name", "field", "distance")} for r in rows
        ]
        nearest: dict[tuple[str, str], int] = {}
        for r in rows:
            key = (r["namespace"], r["name"])
            nearest[key] = min(nearest.get(key, r["distance"]), r["distance"])
        answer["datasets"] = [
            {"namespace": ns, "name": name, "distance": distance}
            for (ns, name), distance in sorted(nearest.items(), key=lambda i: (i[1], i[0]))
        ]
    answer["jobs"] = [{"namespace": ns, "name": name} for ns, name in jobs]
    return answer


def _print_impact_tree(
    direction: Direction, root: Mapping[str, Any], rows: list[dict[str, Any]], limit: int
) -> None:
    from rich.tree import Tree

    tree = Tree(f"[bold]{escape(_label(root))}[/bold] ({direction.value})")
    levels: dict[int, Tree] = {}
    for row in rows:
        level = levels.get(row["distance"])
        if level is None:
            level = levels[row["distance"]] = tree.add(f"distance {row['distance']}")
        jobs = ", ".join(f"{job['namespace']}/{job['name']}" for job in row["via"])
        source = " [yellow](source)[/yellow]" if row.get("isSource") else ""
        level.add(f"{escape(_label(row))}{source} [dim]via {escape(jobs)}[/dim]")
    if not rows:
        tree.add(f"[dim]nothing {direction.value}[/dim]")
    Console().print(tree)
    if len(rows) == limit:
        err.print(f"showing the nearest {limit}; raise --limit to see more")


@cli.command()
def impact(
    direction: Annotated[Direction, typer.Argument(help="downstream (impact) or upstream.")],
    namespace: Annotated[str, typer.Argument(help="Dataset namespace (or an alias's).")],
    name: Annotated[str, typer.Argument(help="Dataset name (or an alias's).")],
    depth: Annotated[
        int,
        typer.Option(
            min=1,
            max=queries.MAX_DEPTH,
            help="Dataset -> Job -> Dataset hops to follow (DERIVES edges with --column).",
        ),
    ] = queries.DEFAULT_DEPTH,
    column: Annotated[
        str | None, typer.Option(help="Follow this field's column lineage instead.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many rows.")] = (
        queries.DEFAULT_LIMIT
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Query timeout, seconds.")] = (
        queries.DEFAULT_TIMEOUT_S
    ),
) -> None:
    """Datasets and jobs downstream (or upstream) of a dataset, by distance in hops.

    Exit codes: 0 the dataset exists (even with nothing reached), 1 no dataset matched,
    2 usage or connection error.
    """
    with _graph(timeout) as graph:
        root = _resolve_or_exit(graph, namespace, name)
        key = (root["namespace"], root["name"])
        if column is not None and column not in root["fields"]:
            err.print(f"no field {column!r} in {_label(root)}", markup=False, highlight=False)
            err.print(f"close matches: {', '.join(get_close_matches(column, root['fields']))}")
            raise typer.Exit(1)
        if column is None:
            traverse = queries.downstream if direction is Direction.downstream else queries.upstream
            rows = traverse(graph, *key, depth=depth, limit=limit)
        else:
            follow = (
                queries.column_downstream
                if direction is Direction.downstream
                else queries.column_upstream
            )
            rows = follow(graph, *key, column, depth=depth, limit=limit)
    if as_json:
        _print_json(impact_answer(root, rows, column))
        return
    _print_impact_tree(direction, {**root, **({"field": column} if column else {})}, rows, limit)


RUN_FIELDS = ("runId", "state", "startedAt", "endedAt", "durationMs", "errorMessage")


@cli.command()
def runs(
    job_namespace: Annotated[str, typer.Argument(help="Job namespace.")],
    job_name: Annotated[str, typer.Argument(help="Job name.")],
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Query timeout, seconds.")] = (
        queries.DEFAULT_TIMEOUT_S
    ),
) -> None:
    """A job's runs, newest first, with state, times, duration and error.

    Exit codes: 0 the job exists, 1 no job matched, 2 usage or connection error.
    """
    with _graph(timeout) as graph:
        if not queries.job_exists(graph, job_namespace, job_name):
            _did_you_mean(
                f"job {job_namespace} {job_name}",
                queries.close_jobs(graph, job_namespace, job_name),
            )
            raise typer.Exit(1)
        history = queries.job_runs(graph, job_namespace, job_name, limit=limit)
        stats = None if as_json else queries.job_run_stats(graph, job_namespace, job_name)
    if as_json:
        _print_json([{field: run[field] for field in RUN_FIELDS} for run in history])
        return
    table = _table(f"{job_namespace}/{job_name}", RUN_FIELDS)
    for run in history:
        table.add_row(*(_cell(run[field]) for field in RUN_FIELDS))
    console = Console()
    console.print(table)
    if stats is not None:
        console.print(
            f"{stats['runs']} runs: {stats['completed']} complete, {stats['failed']} failed, "
            f"{stats['abandoned']} abandoned, {stats['running']} running; completed duration "
            f"p50 {_cell(stats['p50DurationMs'])} ms, p90 {_cell(stats['p90DurationMs'])} ms, "
            f"p99 {_cell(stats['p99DurationMs'])} ms"
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def query_arguments(named: queries.NamedQuery, assignments: list[str]) -> dict[str, Any]:
    """`k=v` strings as the keyword arguments of a library query, typed by its signature."""
    hints = get_type_hints(named.run)
    # The first parameter is the graph itself.
    parameters = list(inspect.signature(named.run).parameters.values())[1:]
    accepted = [parameter.name for parameter in parameters]
    arguments: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep:
            raise ConfigurationError(f"--param {assignment!r}: expected key=value")
        if key not in accepted:
            raise ConfigurationError(
                f"--param {key}: not a parameter of this query ({', '.join(accepted)})"
            )
        try:
            arguments[key] = int(raw) if hints[key] is int else raw
        except ValueError as exc:
            raise ConfigurationError(f"--param {key}: {raw!r} is not a whole number") from exc
    missing = [
        parameter.name
        for parameter in parameters
        if parameter.default is inspect.Parameter.empty and parameter.name not in arguments
    ]
    if missing:
        raise ConfigurationError(f"missing --param for: {', '.join(missing)}")
    return arguments


@cli.command()
def query(
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(queries.QUERIES)}.")],
    param: Annotated[
        list[str] | None, typer.Option(help="A query parameter as key=value (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="Query timeout, seconds.")] = (
        queries.DEFAULT_TIMEOUT_S
    ),
) -> None:
    """Run a named library query (see docs/queries.md).

    Exit codes: 0 rows found, 1 nothing matched, 2 usage or connection error.
    """
    named = queries.QUERIES.get(name)
    if named is None:
        raise ConfigurationError(
            f"no query named {name!r}; choose one of: {', '.join(queries.QUERIES)}"
        )
    arguments = query_arguments(named, param or [])
    with _graph(timeout) as graph:
        if {"namespace", "name"} <= arguments.keys():
            _resolve_or_exit(graph, arguments["namespace"], arguments["name"])
        try:
            answer = named.run(graph, **arguments)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        except ClientError as exc:
            # A parameter Cypher cannot use, such as an `at` that is not a date and time.
            raise ConfigurationError(
                f"{name}: Neo4j refused the parameters: {exc.message}"
            ) from exc
    if not answer:
        err.print(f"{name}: nothing matched")
        raise typer.Exit(1)
    if as_json:
        _print_json(answer)
        return
    rows = answer if isinstance(answer, list) else [answer]
    table = _table(name, rows[0].keys())
    for row in rows:
        table.add_row(*(_cell(value) for value in row.values()))
    Console().print(table)


def main() -> None:
    started = time.monotonic()
    try:
        cli()
    except (ConfigurationError, GraphUnavailable) as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(2)
    except KeyboardInterrupt:
        err.print(f"interrupted after {time.monotonic() - started:.0f} s")
        sys.exit(130)
