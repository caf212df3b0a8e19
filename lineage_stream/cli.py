"""The `lineage-stream` command."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError
from rich.console import Console

from lineage_stream.errors import ConfigurationError, GraphUnavailable
from lineage_stream.settings import Settings

cli = typer.Typer(
    help="Stream OpenLineage events from Kafka into a Neo4j lineage graph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


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
    from lineage_stream.schema import ensure_schema

    settings = _settings()
    partitions = prepare_topics(settings)
    ensure_schema(settings)
    err.print(
        f"lineage-stream worker: {settings.topic} ({partitions} partitions) -> "
        f"{settings.neo4j_uri} [{settings.neo4j_database}], group {settings.consumer_group}"
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
    except (AuthError, ServiceUnavailable) as exc:
        raise GraphUnavailable(f"Neo4j at {settings.neo4j_uri}: {exc}") from exc
    err.print(
        f"pruned {pruned} runs older than {older_than_days:g} days "
        f"(kept the latest {keep_runs} per job and every dataset's last writer)",
        soft_wrap=True,
    )


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
