"""Query benchmark: a large synthetic lineage written by the project's own writer, then p50/p99
latency of each library query at depths 1, 5, 10 and 20.

    python bench/queries.py --clear [--datasets 20000 --jobs 4000 --runs 40000] [--repeat 20]

EMPTIES the database it is pointed at (LINEAGE_NEO4J_* settings), hence the required --clear.
The graph: `layers` layers of datasets; each job reads 1-3 datasets of one layer and writes 1-2
of the next (deep chains), every 50th job also rewrites one of its inputs (cycles), one hub
dataset is read by 1% of the jobs (wide fan-out), column lineage on every output, and runs
spread over the jobs (about 5% FAIL, 1% still RUNNING). Events go through `openlineage.parse`,
`pairing.fold` and `Neo4jWriter.write` exactly as the worker's. Results are printed and written
to bench/results/queries-<UTC time>.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from neo4j import AsyncGraphDatabase, GraphDatabase

from lineage_stream import cypher, queries
from lineage_stream.neo4j_writer import Neo4jWriter
from lineage_stream.openlineage import Event, RunEvent, parse
from lineage_stream.pairing import RunState, fold
from lineage_stream.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"
DEPTHS = (1, 5, 10, 20)
NAMESPACE = "s3://bench"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/spark"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def dataset_name(layer: int, index: int) -> str:
    return f"/layer{layer:02d}/ds{index:06d}"


def output_facets(name: str, inputs: list[str]) -> dict[str, Any]:
    lineage = {
        "value": {
            "inputFields": [
                {"namespace": NAMESPACE, "name": source, "field": "value"} for source in inputs
            ]
        }
    }
    return {
        "schema": {"fields": [{"name": "value", "type": "long"}]},
        "columnLineage": {"fields": lineage},
    }


class Lineage:
    """The synthetic jobs: for each, its inputs and outputs (dataset names)."""

    def __init__(self, datasets: int, jobs: int, layers: int, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.layers = layers
        self.per_layer = max(1, datasets // layers)
        self.hub = dataset_name(0, 0)
        self.jobs: list[tuple[str, list[str], list[str]]] = []
        # A tenth of each layer is "hot": every job reads one hot dataset and writes the same
        # lane's dataset in the next layer, so hot lanes form deep chains through all layers.
        hot_lanes = max(1, self.per_layer // 10)
        for number in range(jobs):
            layer = rng.randrange(layers - 1)
            lane = rng.randrange(hot_lanes)
            inputs = sorted(
                {dataset_name(layer, lane)}
                | {
                    dataset_name(layer, rng.randrange(self.per_layer))
                    for _ in range(rng.randint(0, 2))
                }
            )
            outputs = sorted(
                {dataset_name(layer + 1, lane)}
                | {
                    dataset_name(layer + 1, rng.randrange(self.per_layer))
                    for _ in range(rng.randint(0, 1))
                }
            )
            if number % 100 == 0:
                inputs = sorted({*inputs, self.hub})
            if number % 50 == 0:
                outputs = sorted({*outputs, inputs[0]})
            self.jobs.append((f"job{number:06d}", inputs, outputs))

    def run_events(self, runs: int, now: datetime, seed: int = 8) -> Iterator[list[bytes]]:
        """Each run's events (START, then COMPLETE/FAIL unless still running), in time order."""
        rng = random.Random(seed)
        start = now - timedelta(days=30)
        step = timedelta(days=30) / max(1, runs)
        for number in range(runs):
            name, inputs, outputs = self.jobs[number % len(self.jobs)]
            run_id = str(uuid.UUID(int=number + 1, version=4))
            began = start + step * number
            ended = began + timedelta(seconds=rng.randint(30, 3600))
            roll = rng.random()
            terminal = None if roll < 0.01 else "FAIL" if roll < 0.06 else "COMPLETE"
            events = [self._event("START", run_id, name, began, inputs, outputs)]
            if terminal:
                events.append(self._event(terminal, run_id, name, min(ended, now), inputs, outputs))
            yield events

    @staticmethod
    def _event(
        kind: str, run_id: str, job: str, at: datetime, inputs: list[str], outputs: list[str]
    ) -> bytes:
        run_facets: dict[str, Any] = {}
        if kind == "FAIL":
            run_facets["errorMessage"] = {
                "message": "synthetic failure",
                "programmingLanguage": "JAVA",
            }
        return orjson.dumps(
            {
                "eventType": kind,
                "eventTime": at.isoformat(),
                "producer": PRODUCER,
                "schemaURL": SCHEMA_URL,
                "run": {"runId": run_id, "facets": run_facets},
                "job": {"namespace": "bench", "name": job, "facets": {}},
                "inputs": [{"namespace": NAMESPACE, "name": n, "facets": {}} for n in inputs],
                "outputs": [
                    {"namespace": NAMESPACE, "name": n, "facets": output_facets(n, inputs)}
                    for n in outputs
                ],
            }
        )


async def write_graph(settings: Settings, lineage: Lineage, runs: int, batch_runs: int) -> float:
    auth = (settings.neo4j_user, settings.neo4j_password.get_secret_value())
    now = datetime.now(UTC)
    started = time.perf_counter()
    async with AsyncGraphDatabase.driver(settings.neo4j_uri, auth=auth) as driver:
        writer = Neo4jWriter(driver, settings.neo4j_database)
        events: list[Event] = []
        states: dict[str, RunState] = {}
        for number, raw_events in enumerate(lineage.run_events(runs, now), start=1):
            for raw in raw_events:
                event = parse(raw, max_bytes=1_000_000, now=now)
                assert isinstance(event, RunEvent)
                events.append(event)
                run_id = str(event.run.run_id)
                states[run_id] = fold(states.get(run_id), event)
            if number % batch_runs == 0 or number == runs:
                await writer.write(events, list(states.values()))
                events, states = [], {}
                if number % (batch_runs * 20) == 0 or number == runs:
                    print(f"  {number}/{runs} runs written, {time.perf_counter() - started:.0f} s")
    return time.perf_counter() - started


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float, int]:
    """p50 and p99 in milliseconds over `repeat` calls after one warm-up, and the answer size."""
    answer = call()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    size = len(answer) if isinstance(answer, list) else int(answer is not None)
    return statistics.median(samples), cuts[98], size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clear", action="store_true", help="agree to empty the database")
    parser.add_argument("--datasets", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=4_000)
    parser.add_argument("--runs", type=int, default=40_000)
    parser.add_argument("--layers", type=int, default=30)
    parser.add_argument("--batch-runs", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--skip-write", action="store_true", help="reuse the graph already there")
    args = parser.parse_args()
    if not args.clear and not args.skip_write:
        parser.error("this empties the database; pass --clear (or --skip-write to reuse it)")

    settings = Settings()
    auth = (settings.neo4j_user, settings.neo4j_password.get_secret_value())
    lineage = Lineage(args.datasets, args.jobs, args.layers)
    with GraphDatabase.driver(
        settings.neo4j_uri, auth=auth, notifications_min_severity="OFF"
    ) as driver:
        write_s = None
        if not args.skip_write:
            with driver.session(database=settings.neo4j_database) as session:
                session.run(
                    "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS"
                ).consume()
                for statement in cypher.SCHEMA:
                    session.run(statement).consume()
            print(f"writing {args.runs} runs of {args.jobs} jobs over ~{args.datasets} datasets")
            write_s = asyncio.run(write_graph(settings, lineage, args.runs, args.batch_runs))
        counts = {
            row["label"]: row["n"]
            for row in driver.execute_query(
                "MATCH (n) RETURN labels(n)[0] AS label, count(*) AS n",
                database_=settings.neo4j_database,
            ).records
        }
        graph = queries.Graph(driver, settings.neo4j_database, timeout_s=120)
        first, last = dataset_name(0, 1), dataset_name(args.layers - 1, 1)
        hub = lineage.hub
        busiest = "job000000"
        cases: list[tuple[str, str, int | None, Callable[[], Any]]] = []
        for depth in DEPTHS:
            cases += [
                (
                    "downstream",
                    "layer 0 dataset",
                    depth,
                    lambda d=depth: queries.downstream(graph, NAMESPACE, first, depth=d),
                ),
                (
                    "downstream",
                    "hub (1% of jobs read it)",
                    depth,
                    lambda d=depth: queries.downstream(graph, NAMESPACE, hub, depth=d),
                ),
                (
                    "upstream",
                    f"layer {args.layers - 1} dataset",
                    depth,
                    lambda d=depth: queries.upstream(graph, NAMESPACE, last, depth=d),
                ),
                (
                    "column_downstream",
                    "layer 0 field",
                    depth,
                    lambda d=depth: queries.column_downstream(
                        graph, NAMESPACE, first, "value", depth=d
                    ),
                ),
                (
                    "failed_upstream",
                    f"layer {args.layers - 1}, 30 days",
                    depth,
                    lambda d=depth: queries.failed_upstream(
                        graph, NAMESPACE, last, hours=720, depth=d
                    ),
                ),
            ]
        cases += [
            (
                "resolve_dataset",
                "by key",
                None,
                lambda: queries.resolve_dataset(graph, NAMESPACE, first),
            ),
            (
                "dataset_by_alias",
                "unknown alias",
                None,
                lambda: queries.dataset_by_alias(graph, "s3://elsewhere/x"),
            ),
            (
                "datasets_by_prefix",
                "/layer05/ (limit 100)",
                None,
                lambda: queries.datasets_by_prefix(graph, "/layer05/"),
            ),
            (
                "last_writes",
                "layer 1 dataset",
                None,
                lambda: queries.last_writes(graph, NAMESPACE, dataset_name(1, 1)),
            ),
            ("job_runs", busiest, None, lambda: queries.job_runs(graph, "bench", busiest)),
            (
                "job_run_stats",
                busiest,
                None,
                lambda: queries.job_run_stats(graph, "bench", busiest),
            ),
            ("unfinished_runs", "all", None, lambda: queries.unfinished_runs(graph)),
            (
                "inputs_at",
                "layer 1 dataset, now",
                None,
                lambda: queries.inputs_at(graph, NAMESPACE, dataset_name(1, 1)),
            ),
        ]
        results = []
        for name, subject, depth, call in cases:
            p50, p99, size = timed(call, args.repeat)
            results.append(
                {
                    "query": name,
                    "subject": subject,
                    "depth": depth,
                    "p50_ms": round(p50, 1),
                    "p99_ms": round(p99, 1),
                    "rows": size,
                }
            )
            print(
                f"{name:20} {subject:28} depth {depth or '-':>2}  p50 {p50:8.1f} ms  "
                f"p99 {p99:8.1f} ms  rows {size}"
            )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    report = {
        "graph": counts,
        "write_seconds": write_s,
        "parameters": vars(args),
        "results": results,
    }
    (RESULTS / f"queries-{stamp}.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"Graph: {', '.join(f'{n} {label}' for label, n in sorted(counts.items()))}; "
        f"{args.repeat} timed calls each after one warm-up.",
        "",
        "| query | subject | depth | p50 ms | p99 ms | rows |",
        "|---|---|---|---|---|---|",
        *(
            f"| `{r['query']}` | {r['subject']} | {r['depth'] or '-'} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['rows']} |"
            for r in results
        ),
    ]
    (RESULTS / f"queries-{stamp}.md").write_text("\n".join(lines) + "\n")
    print(f"results in {RESULTS}/queries-{stamp}.{{json,md}}")


if __name__ == "__main__":
    main()
