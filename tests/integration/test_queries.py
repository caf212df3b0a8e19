"""The analyst queries and CLI on the real Neo4j, over a known lineage ingested by the worker
from Kafka: cycles, an alias, failing, abandoned and running runs,
column lineage. Every answer is asserted exactly.

The lineage (namespace s3://lake unless said; jobs in namespace etl):

    raw --clean_orders--> clean --revenue--> gold --publish--> hive analytics.revenue_t
    ref --revenue--^      clean --dedupe_clean--> clean (reads and writes one table)
    revenue_t (named by its location s3a://lake/warehouse/revenue_t/) --report--> report
    report --recycle--> raw (a cycle back to the start)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from neo4j import Driver

from lineage_stream import queries
from lineage_stream.queries import Graph
from tests.builders import dataset, run_event
from tests.harness import (
    WorkerProcess,
    clear_graph,
    consume_all,
    drain,
    free_port,
    produce,
    run_count,
    unique,
    wait_until,
)
from tests.integration.test_worker import create_topic, worker_env
from tests.query_docs import documented_statements

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
LAKE = "s3://lake"
HIVE = "hive://metastore:9083"
RAW = "/raw/orders"
REF = "/ref/customers"
CLEAN = "/clean/orders"
GOLD = "/gold/revenue"
REPORT = "/report/daily"
TABLE = "analytics.revenue_t"
LOCATION = ("s3a://lake", "/warehouse/revenue_t/")
TABLE_ALIAS = "s3://lake/warehouse/revenue_t"
RUN_TIMEOUT = timedelta(hours=1)


def ago(hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    return NOW - timedelta(hours=hours, minutes=minutes, seconds=seconds)


def run_id(n: int) -> str:
    return f"0192b000-0000-7000-8000-{n:012d}"


def from_field(ns: str, name: str, source: str) -> list[tuple[str, str, str]]:
    return [(ns, name, source)]


RAW_IN = dataset(LAKE, RAW, fields=["amount"])
REF_IN = dataset(LAKE, REF, fields=["customer"])
CLEAN_IN = dataset(LAKE, CLEAN, fields=["amount"])
GOLD_IN = dataset(LAKE, GOLD, fields=["total"])
REPORT_IN = dataset(LAKE, REPORT, fields=["total"])
CLEAN_OUT = dataset(
    LAKE, CLEAN, fields=["amount"], column_lineage={"amount": from_field(LAKE, RAW, "amount")}
)
DEDUPED = dataset(
    LAKE, CLEAN, fields=["amount"], column_lineage={"amount": from_field(LAKE, CLEAN, "amount")}
)
GOLD_OUT = dataset(
    LAKE, GOLD, fields=["total"], column_lineage={"total": from_field(LAKE, CLEAN, "amount")}
)
GOLD_WITH_STATS = {
    **GOLD_OUT,
    "outputFacets": {"outputStatistics": {"rowCount": 100, "size": 2048}},
}
TABLE_OUT = dataset(
    *LOCATION,
    fields=["total"],
    symlink=(HIVE, TABLE),
    column_lineage={"total": from_field(LAKE, GOLD, "total")},
)
TABLE_BY_LOCATION = dataset(*LOCATION)
REPORT_OUT = dataset(
    LAKE, REPORT, fields=["total"], column_lineage={"total": from_field(*LOCATION, "total")}
)
RAW_OUT = dataset(LAKE, RAW, fields=["amount"])


@dataclass
class Run:
    number: int
    job: str
    started: datetime
    ended: datetime | None
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    error: str | None = None
    final_outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return run_id(self.number)

    def events(self) -> list[bytes]:
        common = {"run_id": self.id, "job": ("etl", self.job), "inputs": self.inputs}
        events = [run_event("START", at=self.started.isoformat(), outputs=self.outputs, **common)]
        if self.ended is not None:
            events.append(
                run_event(
                    "FAIL" if self.error else "COMPLETE",
                    at=self.ended.isoformat(),
                    outputs=self.final_outputs or self.outputs,
                    error_message=self.error,
                    **common,
                )
            )
        return [orjson.dumps(event) for event in events]


# In time order; each run is ingested as one batch.
RUNS = [
    Run(1, "clean_orders", ago(48), ago(47), [RAW_IN], [CLEAN_OUT], error="bad input"),
    Run(2, "revenue", ago(30), ago(30, seconds=-90), [CLEAN_IN, REF_IN], [GOLD_OUT]),
    Run(3, "clean_orders", ago(6), ago(5, 50), [RAW_IN], [CLEAN_OUT]),
    Run(4, "dedupe_clean", ago(5, 40), ago(5, 35), [CLEAN_IN], [DEDUPED]),
    Run(5, "revenue", ago(5), ago(4, 59), [CLEAN_IN, REF_IN], [GOLD_OUT], None, [GOLD_WITH_STATS]),
    Run(6, "publish", ago(4, 50), ago(4, 49), [GOLD_IN], [TABLE_OUT]),
    Run(7, "report", ago(3), None, [TABLE_BY_LOCATION], [REPORT_OUT]),
    Run(8, "revenue", ago(2), ago(1, 58), [CLEAN_IN, REF_IN], [GOLD_OUT], error="disk full"),
    Run(9, "recycle", ago(minutes=10), None, [REPORT_IN], [RAW_OUT]),
]
RUN = {run.number: run for run in RUNS}


@pytest.fixture(scope="module")
def graph(
    kafka_bootstrap: str, neo4j_uri: str, neo4j_driver: Driver, tmp_path_factory: Any
) -> Graph:
    """Every run through the worker over Kafka; a restart's start-up sweep abandons the stale run.

    The second start is what makes the abandonment deterministic: by then the pairing table
    holds every run, whereas the first start's sweep may come before the events.
    """
    clear_graph(neo4j_driver)
    topic = unique("queries")
    create_topic(kafka_bootstrap, topic, partitions=1)
    produce(kafka_bootstrap, topic, [(None, raw) for run in RUNS for raw in run.events()])
    env = worker_env(
        kafka_bootstrap,
        neo4j_uri,
        topic,
        LINEAGE_RUN_TIMEOUT_S=str(int(RUN_TIMEOUT.total_seconds())),
        LINEAGE_METRICS_PORT="0",
    )
    log = tmp_path_factory.mktemp("queries") / "worker.log"
    worker = WorkerProcess(env, log).start()
    try:
        drain(worker, kafka_bootstrap, topic)
    finally:
        worker.stop()  # exit codes on SIGTERM are test_worker's business
    worker = WorkerProcess(env, log).start()
    try:
        wait_until(
            lambda: (
                worker.assert_alive()
                or run_count(neo4j_driver, f"p.runId = '{RUN[7].id}' AND p.state = 'ABANDONED'")
            ),
            timeout=60,
            what="the stale run to be abandoned",
        )
    finally:
        worker.stop()
    assert consume_all(kafka_bootstrap, f"{topic}.dlq", expected=1, timeout=2) == []
    return Graph(neo4j_driver, "neo4j", timeout_s=10)


def ds(namespace: str, name: str, distance: int, *jobs: str, **extra: Any) -> dict[str, Any]:
    via = [{"namespace": "etl", "name": job} for job in jobs]
    return {"namespace": namespace, "name": name, "distance": distance, "via": via, **extra}


def fld(name: str, column: str, distance: int, *jobs: str, namespace: str = LAKE) -> dict[str, Any]:
    via = [{"namespace": "etl", "name": job} for job in jobs]
    return {"namespace": namespace, "name": name, "field": column, "distance": distance, "via": via}


def test_downstream_lists_each_dataset_once_at_its_distance_and_never_the_root(
    graph: Graph,
) -> None:
    assert queries.downstream(graph, LAKE, RAW) == [
        ds(LAKE, CLEAN, 1, "clean_orders", "dedupe_clean"),
        ds(LAKE, GOLD, 2, "revenue"),
        ds(HIVE, TABLE, 3, "publish"),
        ds(LAKE, REPORT, 4, "report"),
    ]


def test_downstream_stops_at_the_depth(graph: Graph) -> None:
    assert queries.downstream(graph, LAKE, RAW, depth=1) == [
        ds(LAKE, CLEAN, 1, "clean_orders", "dedupe_clean")
    ]
    assert queries.downstream(graph, LAKE, RAW, depth=2, limit=1) == [
        ds(LAKE, CLEAN, 1, "clean_orders", "dedupe_clean")
    ]


def test_a_dataset_named_by_its_location_alias_is_the_table(graph: Graph) -> None:
    by_alias = queries.downstream(graph, *LOCATION, depth=2)
    assert by_alias == queries.downstream(graph, HIVE, TABLE, depth=2)
    assert by_alias == [ds(LAKE, REPORT, 1, "report"), ds(LAKE, RAW, 2, "recycle")]
    expected = {"namespace": HIVE, "name": TABLE, "aliases": [TABLE_ALIAS]}
    assert queries.resolve_dataset(graph, *LOCATION) == {**expected, "fields": ["total"]}
    assert queries.dataset_by_alias(graph, "s3a://lake/warehouse/revenue_t/") == expected
    assert queries.dataset_by_alias(graph, "s3://lake/warehouse/elsewhere") is None


def test_upstream_goes_back_to_the_sources(graph: Graph) -> None:
    assert queries.upstream(graph, LAKE, GOLD, depth=20) == [
        ds(LAKE, CLEAN, 1, "dedupe_clean", "revenue", isSource=False),
        ds(LAKE, REF, 1, "revenue", isSource=True),
        ds(LAKE, RAW, 2, "clean_orders", isSource=False),
        ds(LAKE, REPORT, 3, "recycle", isSource=False),
        ds(HIVE, TABLE, 4, "report", isSource=False),
    ]


def test_column_lineage_follows_derivations_through_the_self_cycle(graph: Graph) -> None:
    assert queries.column_downstream(graph, LAKE, RAW, "amount") == [
        fld(CLEAN, "amount", 1, "clean_orders", "dedupe_clean"),
        fld(GOLD, "total", 2, "revenue"),
        fld(TABLE, "total", 3, "publish", namespace=HIVE),
        fld(REPORT, "total", 4, "report"),
    ]
    assert queries.column_upstream(graph, HIVE, TABLE, "total", depth=2) == [
        fld(GOLD, "total", 1, "publish"),
        fld(CLEAN, "amount", 2, "dedupe_clean", "revenue"),
    ]
    assert queries.column_downstream(graph, LAKE, RAW, "no_such_field") == []


def test_last_writes_are_newest_first_with_state_error_and_statistics(graph: Graph) -> None:
    rows = queries.last_writes(graph, LAKE, GOLD)
    assert [(r["runId"], r["state"], r["errorMessage"]) for r in rows] == [
        (RUN[8].id, "FAIL", "disk full"),
        (RUN[5].id, "COMPLETE", None),
        (RUN[2].id, "COMPLETE", None),
    ]
    assert rows[1] == {
        "runId": RUN[5].id,
        "jobNamespace": "etl",
        "jobName": "revenue",
        "state": "COMPLETE",
        "startedAt": ago(5),
        "endedAt": ago(4, 59),
        "durationMs": 60_000,
        "errorMessage": None,
        "rowCount": 100,
        "bytes": 2048,
    }


def test_failed_upstream_finds_recent_failures_and_abandonment_within_depth(graph: Graph) -> None:
    def answer(**bounds: int) -> list[tuple[str, int, str, str]]:
        rows = queries.failed_upstream(graph, LAKE, GOLD, **bounds)
        return [(r["jobName"], r["distance"], r["runId"], r["state"]) for r in rows]

    assert answer(hours=24) == [
        ("revenue", 1, RUN[8].id, "FAIL"),
        ("report", 4, RUN[7].id, "ABANDONED"),
    ]
    assert answer(hours=24, depth=3) == [("revenue", 1, RUN[8].id, "FAIL")]
    assert answer(hours=1) == []
    # Run 7's last event was 3 hours ago; it became abandoned an hour later (RUN_TIMEOUT).
    assert answer(hours=3) == [
        ("revenue", 1, RUN[8].id, "FAIL"),
        ("report", 4, RUN[7].id, "ABANDONED"),
    ]
    assert answer(hours=72, depth=20) == [
        ("revenue", 1, RUN[8].id, "FAIL"),
        ("clean_orders", 2, RUN[1].id, "FAIL"),
        ("report", 4, RUN[7].id, "ABANDONED"),
    ]


def test_job_runs_and_duration_percentiles(graph: Graph) -> None:
    assert queries.job_runs(graph, "etl", "revenue") == [
        {
            "runId": RUN[n].id,
            "state": state,
            "startedAt": RUN[n].started,
            "endedAt": RUN[n].ended,
            "durationMs": duration,
            "errorMessage": error,
        }
        for n, state, duration, error in [
            (8, "FAIL", 120_000, "disk full"),
            (5, "COMPLETE", 60_000, None),
            (2, "COMPLETE", 90_000, None),
        ]
    ]
    assert queries.job_run_stats(graph, "etl", "revenue") == {
        "runs": 3,
        "completed": 2,
        "failed": 1,
        "abandoned": 0,
        "running": 0,
        "p50DurationMs": 60_000,
        "p90DurationMs": 90_000,
        "p99DurationMs": 90_000,
        "maxDurationMs": 90_000,
    }


def test_unfinished_runs_are_the_running_then_the_abandoned(graph: Graph) -> None:
    assert queries.unfinished_runs(graph) == [
        {
            "state": "RUNNING",
            "jobNamespace": "etl",
            "jobName": "recycle",
            "runId": RUN[9].id,
            "startedAt": RUN[9].started,
            "lastEventAt": RUN[9].started,
        },
        {
            "state": "ABANDONED",
            "jobNamespace": "etl",
            "jobName": "report",
            "runId": RUN[7].id,
            "startedAt": RUN[7].started,
            "lastEventAt": RUN[7].started,
        },
    ]


def test_inputs_at_gives_the_completed_run_behind_the_state_then_and_its_input_versions(
    graph: Graph,
) -> None:
    now = queries.inputs_at(graph, LAKE, GOLD)
    assert now == {
        "namespace": LAKE,
        "name": GOLD,
        "runId": RUN[5].id,
        "jobNamespace": "etl",
        "jobName": "revenue",
        "startedAt": RUN[5].started,
        "endedAt": RUN[5].ended,
        "inputs": [
            {"namespace": LAKE, "name": CLEAN, "producedBy": RUN[4].id, "producedAt": RUN[4].ended},
            {"namespace": LAKE, "name": REF, "producedBy": None, "producedAt": None},
        ],
    }
    then = queries.inputs_at(graph, LAKE, GOLD, ago(10).isoformat())
    assert then is not None
    assert (then["runId"], then["inputs"][0]["producedBy"]) == (RUN[2].id, None)
    assert queries.inputs_at(graph, LAKE, GOLD, ago(40)) is None


def test_prefix_lookup(graph: Graph) -> None:
    names = [(r["namespace"], r["name"]) for r in queries.datasets_by_prefix(graph, "/", LAKE)]
    assert names == [(LAKE, n) for n in (CLEAN, GOLD, RAW, REF, REPORT)]
    assert queries.datasets_by_prefix(graph, "analytics.") == [
        {"namespace": HIVE, "name": TABLE, "aliases": [TABLE_ALIAS]}
    ]


def test_close_matches_rank_the_likeliest_first(graph: Graph) -> None:
    assert queries.close_datasets(graph, LAKE, "/raw/ordrs")[0]["name"] == RAW
    assert queries.close_jobs(graph, "etl", "revenu")[0]["name"] == "revenue"


# --- the CLI as a subprocess ---------------------------------------------------------------


def lineage_stream(*args: str, uri: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LINEAGE_NEO4J_URI": uri, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "lineage_stream", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_cli_impact_json(graph: Graph, neo4j_uri: str) -> None:
    done = lineage_stream("impact", "downstream", LAKE, RAW, "--json", uri=neo4j_uri)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {
        "root": {"namespace": LAKE, "name": RAW},
        "datasets": [
            {"namespace": LAKE, "name": CLEAN, "distance": 1},
            {"namespace": LAKE, "name": GOLD, "distance": 2},
            {"namespace": HIVE, "name": TABLE, "distance": 3},
            {"namespace": LAKE, "name": REPORT, "distance": 4},
        ],
        "jobs": [
            {"namespace": "etl", "name": name}
            for name in ("clean_orders", "dedupe_clean", "publish", "report", "revenue")
        ],
    }


def test_cli_impact_upstream_by_alias_with_depth(graph: Graph, neo4j_uri: str) -> None:
    done = lineage_stream("impact", "upstream", *LOCATION, "--depth", "1", "--json", uri=neo4j_uri)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {
        "root": {"namespace": HIVE, "name": TABLE},
        "datasets": [{"namespace": LAKE, "name": GOLD, "distance": 1}],
        "jobs": [{"namespace": "etl", "name": "publish"}],
    }


def test_cli_column_impact_json(graph: Graph, neo4j_uri: str) -> None:
    done = lineage_stream(
        "impact", "downstream", LAKE, GOLD, "--column", "total", "--json", uri=neo4j_uri
    )
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {
        "root": {"namespace": LAKE, "name": GOLD, "field": "total"},
        "fields": [
            {"namespace": HIVE, "name": TABLE, "field": "total", "distance": 1},
            {"namespace": LAKE, "name": REPORT, "field": "total", "distance": 2},
        ],
        "datasets": [
            {"namespace": HIVE, "name": TABLE, "distance": 1},
            {"namespace": LAKE, "name": REPORT, "distance": 2},
        ],
        "jobs": [{"namespace": "etl", "name": "publish"}, {"namespace": "etl", "name": "report"}],
    }


def test_cli_impact_tree_for_humans(graph: Graph, neo4j_uri: str) -> None:
    done = lineage_stream("impact", "downstream", LAKE, RAW, "--depth", "2", uri=neo4j_uri)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{LAKE}{RAW} (downstream)"
    assert [line.strip(" │├└─") for line in lines[1:]] == [
        "distance 1",
        f"{LAKE}{CLEAN} via etl/clean_orders, etl/dedupe_clean",
        "distance 2",
        f"{LAKE}{GOLD} via etl/revenue",
    ]


def test_cli_unknown_dataset_exits_1_with_close_matches(graph: Graph, neo4j_uri: str) -> None:
    done = lineage_stream("impact", "downstream", LAKE, "/raw/ordrs", "--json", uri=neo4j_uri)
    assert (done.returncode, done.stdout) == (1, "")
    assert "no dataset s3://lake /raw/ordrs" in done.stderr
    assert f"{LAKE} {RAW}" in done.stderr


def test_cli_unknown_column_exits_1_with_the_close_fields(graph: Graph, neo4j_uri: str) -> None:
    done = lineage_stream("impact", "downstream", LAKE, RAW, "--column", "amont", uri=neo4j_uri)
    assert (done.returncode, done.stdout) == (1, "")
    assert f"no field 'amont' in {LAKE}{RAW}" in done.stderr
    assert "close matches: amount" in done.stderr


def test_cli_runs_json_newest_first_with_rfc3339_times(graph: Graph, neo4j_uri: str) -> None:
    done = lineage_stream("runs", "etl", "revenue", "--json", uri=neo4j_uri)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == [
        {
            "runId": RUN[n].id,
            "state": state,
            "startedAt": RUN[n].started.isoformat(),
            "endedAt": RUN[n].ended.isoformat() if RUN[n].ended else None,
            "durationMs": duration,
            "errorMessage": error,
        }
        for n, state, duration, error in [
            (8, "FAIL", 120_000, "disk full"),
            (5, "COMPLETE", 60_000, None),
            (2, "COMPLETE", 90_000, None),
        ]
    ]
    table = lineage_stream("runs", "etl", "revenue", uri=neo4j_uri)
    assert table.returncode == 0, table.stderr
    assert "3 runs: 2 complete, 1 failed, 0 abandoned, 0 running" in table.stdout
    assert "p50 60000 ms, p90 90000 ms, p99 90000 ms" in table.stdout


def test_cli_unknown_job_exits_1_with_close_matches(graph: Graph, neo4j_uri: str) -> None:
    done = lineage_stream("runs", "etl", "revenu", uri=neo4j_uri)
    assert done.returncode == 1
    assert "no job etl revenu matched" in done.stderr
    assert "etl revenue" in done.stderr


def test_cli_named_query_with_parameters(graph: Graph, neo4j_uri: str) -> None:
    done = lineage_stream(
        "query",
        "failed_upstream",
        "--param",
        f"namespace={LAKE}",
        "--param",
        f"name={GOLD}",
        "--param",
        "hours=24",
        "--param",
        "depth=3",
        "--json",
        uri=neo4j_uri,
    )
    assert done.returncode == 0, done.stderr
    [row] = orjson.loads(done.stdout)
    assert (row["jobName"], row["runId"], row["errorMessage"]) == (
        "revenue",
        RUN[8].id,
        "disk full",
    )
    nothing = lineage_stream(
        "query", "dataset_by_alias", "--param", "path=s3://nowhere/x", uri=neo4j_uri
    )
    assert nothing.returncode == 1
    assert "dataset_by_alias: nothing matched" in nothing.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("query", "no_such_query"), "no query named 'no_such_query'"),
        (("query", "job_runs", "--param", "job_namespace=etl"), "missing --param for: job_name"),
        (("query", "unfinished_runs", "--param", "limit=many"), "'many' is not a whole number"),
        (("query", "unfinished_runs", "--param", "colour=red"), "not a parameter of this query"),
        (
            (
                *("query", "inputs_at", "--param", f"namespace={LAKE}"),
                *("--param", f"name={GOLD}", "--param", "at=yesterday"),
            ),
            "inputs_at: Neo4j refused the parameters",
        ),
        (("impact", "downstream", LAKE, RAW, "--depth", "21"), "--depth"),
        (("impact", "sideways", LAKE, RAW), "sideways"),
    ],
)
def test_cli_usage_errors_exit_2_without_traceback(
    graph: Graph, neo4j_uri: str, args: tuple[str, ...], message: str
) -> None:
    done = lineage_stream(*args, uri=neo4j_uri)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_unreachable_neo4j_exits_2_within_15_seconds() -> None:
    started = time.monotonic()
    done = lineage_stream(
        "runs", "etl", "revenue", uri=f"bolt://127.0.0.1:{free_port()}", timeout=15
    )
    assert done.returncode == 2, (time.monotonic() - started, done.stderr)
    assert "Neo4j cannot be reached" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_documented_cypher_runs_and_answers_as_the_library(graph: Graph) -> None:
    documented = documented_statements()
    root = queries.dataset_parameters(LAKE, RAW)
    [origin] = graph.rows(documented["DATASET_ID"], **root)
    first_hop = graph.rows(documented["DOWNSTREAM_HOP"], frontier=[origin["id"]])
    assert [(row["namespace"], row["name"]) for row in first_hop] == [(LAKE, CLEAN)]
    assert graph.rows(
        documented["JOB_RUNS"], jobNamespace="etl", jobName="revenue", limit=5
    ) == queries.job_runs(graph, "etl", "revenue", limit=5)


def test_a_query_outliving_its_timeout_is_cancelled_and_reported(neo4j_driver: Driver) -> None:
    from lineage_stream.errors import GraphUnavailable

    impatient = Graph(neo4j_driver, "neo4j", timeout_s=0.2)
    with pytest.raises(GraphUnavailable, match=r"did not finish within its 0\.2 s timeout"):
        impatient.rows("UNWIND range(1, 1000000000) AS n RETURN sum(n) AS total")
