"""Real Spark end to end: pyspark applications with the openlineage-spark listener publish to the
local Kafka over the Kafka transport (default message key), the worker builds the graph, and the
graph must equal the lineage written here by hand."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver

from tests.e2e.postgres import Postgres, postgres_server
from tests.e2e.spark_workloads import FAILURE, NAMESPACE, WORKLOADS, Paths
from tests.harness import GraphSnapshot, WorkerProcess, clear_graph, unique
from tests.integration.test_worker import create_topic, worker_env

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SPARK_TIMEOUT_S = 420
GRAPH_TIMEOUT_S = 120

ORDERS = ["order_id", "customer_id", "product_id", "quantity"]
IDENTITY = ["DIRECT/IDENTITY"]
TRANSFORMED = ["DIRECT/TRANSFORMATION"]
AGGREGATED = ["DIRECT/AGGREGATION"]
INSERT = "execute_insert_into_hadoop_fs_relation_command"

DatasetName = tuple[str, str]


@dataclass
class Child:
    """One SQL execution of an application: a child run and the datasets it touched."""

    job: str
    inputs: list[DatasetName] = field(default_factory=list)
    outputs: list[DatasetName] = field(default_factory=list)
    states: list[str] = field(default_factory=lambda: ["COMPLETE"])


@dataclass
class Derivation:
    source: DatasetName
    source_field: str
    target: DatasetName
    target_field: str
    job: str
    transformations: list[str]


@dataclass
class Expected:
    children: dict[str, list[Child]]
    fields: dict[DatasetName, list[str]]
    derivations: list[Derivation]


def expected_lineage(paths: Paths, postgres: Postgres) -> Expected:
    def file(path: Path) -> DatasetName:
        return ("file", str(path))

    def table(name: str) -> DatasetName:
        return (f"file:{paths.warehouse}", f"default.{name}")

    orders, customers = file(paths.orders_csv), file(paths.customers_json)
    products, archive = file(paths.products_parquet), file(paths.archive_parquet)
    enriched, totals = file(paths.enriched), file(paths.totals)
    big, small, never = file(paths.big_orders), file(paths.small_orders), file(paths.never_written)
    orders_table, quantities = table("orders"), table("customer_quantities")
    pg_products = (f"postgres://127.0.0.1:{postgres.port}", "postgres.public.products")

    join_job = f"three_way_join.{INSERT}.out_enriched"
    totals_job = f"union_aggregate.{INSERT}.out_totals"
    ctas_job = "managed_tables.execute_create_data_source_table_as_select_command.default_orders"
    ctas_insert = f"managed_tables.{INSERT}.warehouse_orders"
    insert_job = f"managed_tables.{INSERT}.warehouse_customer_quantities"
    jdbc_job = "jdbc_write.execute_save_into_data_source_command.public_products"

    def same(
        source: DatasetName, target: DatasetName, names: list[str], job: str
    ) -> list[Derivation]:
        return [Derivation(source, name, target, name, job, IDENTITY) for name in names]

    return Expected(
        children={
            "three_way_join": [Child(join_job, [orders, customers, products], [enriched])],
            "union_aggregate": [Child(totals_job, [orders, archive], [totals])],
            "several_actions": [
                Child(f"several_actions.{INSERT}.out_big_orders", [orders], [big]),
                Child(f"several_actions.{INSERT}.out_small_orders", [orders], [small]),
            ],
            "managed_tables": [
                Child(ctas_job, [orders], [orders_table]),
                # The CTAS writes through an insert command that names the table by its location.
                Child(ctas_insert, [orders], [orders_table]),
                Child(
                    "managed_tables.execute_create_data_source_table_command"
                    ".default_customer_quantities",
                    [],
                    [quantities],
                ),
                # INSERT INTO and INSERT OVERWRITE: one job, two runs.
                Child(insert_job, [orders_table], [quantities], ["COMPLETE", "COMPLETE"]),
            ],
            "failing_job": [
                Child(f"failing_job.{INSERT}.out_never_written", [orders], [never], ["FAIL"])
            ],
            "jdbc_write": [
                Child(jdbc_job, [products], [pg_products]),
                # JDBC writes each partition from an RDD of rows: one more SQL execution.
                Child("jdbc_write.deserialize_to_object", [products], []),
            ],
        },
        fields={
            orders: ORDERS,
            customers: ["customer_id", "name", "country"],
            products: ["product_id", "title", "price"],
            archive: ORDERS,
            enriched: ["order_id", "customer", "amount"],
            totals: ["customer_id", "total_quantity"],
            big: ORDERS,
            small: ORDERS,
            never: ["order_id"],
            orders_table: ["order_id", "customer_id", "quantity"],
            quantities: ["customer_id", "quantity"],
            pg_products: ["product_id", "title", "price"],
        },
        derivations=[
            Derivation(orders, "order_id", enriched, "order_id", join_job, IDENTITY),
            Derivation(customers, "name", enriched, "customer", join_job, IDENTITY),
            Derivation(orders, "quantity", enriched, "amount", join_job, TRANSFORMED),
            Derivation(products, "price", enriched, "amount", join_job, TRANSFORMED),
            *same(orders, totals, ["customer_id"], totals_job),
            *same(archive, totals, ["customer_id"], totals_job),
            Derivation(orders, "quantity", totals, "total_quantity", totals_job, AGGREGATED),
            # openlineage-spark 1.53.0 labels only the first union branch AGGREGATION.
            Derivation(archive, "quantity", totals, "total_quantity", totals_job, IDENTITY),
            *same(orders, big, ORDERS, f"several_actions.{INSERT}.out_big_orders"),
            *same(orders, small, ORDERS, f"several_actions.{INSERT}.out_small_orders"),
            Derivation(
                orders,
                "order_id",
                never,
                "order_id",
                f"failing_job.{INSERT}.out_never_written",
                # order_id is both the CASE's value and its condition.
                [*TRANSFORMED, "INDIRECT/CONDITIONAL"],
            ),
            *same(orders, orders_table, ["order_id", "customer_id", "quantity"], ctas_job),
            *same(orders, orders_table, ["order_id", "customer_id", "quantity"], ctas_insert),
            *same(orders_table, quantities, ["customer_id"], insert_job),
            # INSERT INTO copies quantity, INSERT OVERWRITE doubles it.
            Derivation(
                orders_table, "quantity", quantities, "quantity", insert_job, IDENTITY + TRANSFORMED
            ),
            *same(products, pg_products, ["product_id", "title", "price"], jdbc_job),
        ],
    )


def _dataset(name: DatasetName) -> str:
    return f"Dataset {name[0]} {name[1]}"


def _job(name: str) -> str:
    return f"Job {NAMESPACE}/{name}"


def _runs(name: str) -> str:
    return f"Runs of {NAMESPACE}/{name}"


def expected_snapshot(expected: Expected) -> GraphSnapshot:
    """The graph as job-level facts: run ids are random, so runs are counted per job."""
    nodes: dict[str, dict[str, Any]] = {}
    edges: dict[str, dict[str, Any]] = {}
    for name, names in expected.fields.items():
        nodes[_dataset(name)] = {"fields": names}
    for app, children in expected.children.items():
        nodes[_job(app)] = {}
        nodes[_runs(app)] = {"states": ["COMPLETE"]}
        for child in children:
            runs = len(child.states)
            nodes[_job(child.job)] = {}
            nodes[_runs(child.job)] = {"states": sorted(child.states)}
            edges[f"{_job(child.job)} -CHILD_OF-> {_job(app)}"] = {}
            edges[f"{_runs(child.job)} -CHILD_OF-> {_runs(app)}"] = {"count": runs}
            for source in child.inputs:
                edges[f"{_dataset(source)} -INPUT_TO-> {_runs(child.job)}"] = {"count": runs}
                edges[f"{_dataset(source)} -CONSUMED_BY-> {_job(child.job)}"] = {}
            for target in child.outputs:
                edges[f"{_runs(child.job)} -OUTPUT_TO-> {_dataset(target)}"] = {"count": runs}
                edges[f"{_job(child.job)} -PRODUCES-> {_dataset(target)}"] = {}
    for d in expected.derivations:
        key = (
            f"{_dataset(d.source)}.{d.source_field} -DERIVES {d.job}-> "
            f"{_dataset(d.target)}.{d.target_field}"
        )
        edges[key] = {"transformations": d.transformations}
    return GraphSnapshot(nodes, edges)


def _rows(driver: Driver, query: str) -> list[dict[str, Any]]:
    records, _, _ = driver.execute_query(query)
    return [record.data() for record in records]


def actual_snapshot(driver: Driver) -> GraphSnapshot:
    nodes: dict[str, dict[str, Any]] = {}
    edges: dict[str, dict[str, Any]] = {}
    for row in _rows(
        driver, "MATCH (d:Dataset) RETURN d.namespace AS ns, d.name AS name, d.fields AS fields"
    ):
        nodes[_dataset((row["ns"], row["name"]))] = {"fields": row["fields"]}
    for row in _rows(
        driver,
        "MATCH (j:Job) OPTIONAL MATCH (j)-[:HAS_RUN]->(p:Process) "
        "RETURN j.namespace AS ns, j.name AS name, collect(p.state) AS states",
    ):
        assert row["ns"] == NAMESPACE, row
        nodes[_job(row["name"])] = {}
        if row["states"]:
            nodes[_runs(row["name"])] = {"states": sorted(row["states"])}
    run_edges = {
        "CHILD_OF": "MATCH (c:Process)-[:CHILD_OF]->(p:Process) "
        "RETURN 'Runs of ' + c.jobNamespace + '/' + c.jobName AS source, "
        "'Runs of ' + p.jobNamespace + '/' + p.jobName AS target",
        "INPUT_TO": "MATCH (d:Dataset)-[:INPUT_TO]->(p:Process) "
        "RETURN 'Dataset ' + d.namespace + ' ' + d.name AS source, "
        "'Runs of ' + p.jobNamespace + '/' + p.jobName AS target",
        "OUTPUT_TO": "MATCH (p:Process)-[:OUTPUT_TO]->(d:Dataset) "
        "RETURN 'Runs of ' + p.jobNamespace + '/' + p.jobName AS source, "
        "'Dataset ' + d.namespace + ' ' + d.name AS target",
    }
    for kind, query in run_edges.items():
        counts = Counter((row["source"], row["target"]) for row in _rows(driver, query))
        for (source, target), count in counts.items():
            edges[f"{source} -{kind}-> {target}"] = {"count": count}
    job_edges = {
        "CHILD_OF": "MATCH (c:Job)-[:CHILD_OF]->(p:Job) "
        "RETURN 'Job ' + c.namespace + '/' + c.name AS source, "
        "'Job ' + p.namespace + '/' + p.name AS target",
        "CONSUMED_BY": "MATCH (d:Dataset)-[:CONSUMED_BY]->(j:Job) "
        "RETURN 'Dataset ' + d.namespace + ' ' + d.name AS source, "
        "'Job ' + j.namespace + '/' + j.name AS target",
        "PRODUCES": "MATCH (j:Job)-[:PRODUCES]->(d:Dataset) "
        "RETURN 'Job ' + j.namespace + '/' + j.name AS source, "
        "'Dataset ' + d.namespace + ' ' + d.name AS target",
    }
    for kind, query in job_edges.items():
        for row in _rows(driver, query):
            key = f"{row['source']} -{kind}-> {row['target']}"
            assert key not in edges, f"duplicate edge {key}"
            edges[key] = {}
    derives = _rows(
        driver,
        "MATCH (s:Field)-[r:DERIVES]->(t:Field) RETURN 'Dataset ' + s.namespace + ' ' + s.name "
        "+ '.' + s.field AS source, 'Dataset ' + t.namespace + ' ' + t.name + '.' + t.field "
        "AS target, r.jobName AS job, r.transformations AS how",
    )
    for row in derives:
        edges[f"{row['source']} -DERIVES {row['job']}-> {row['target']}"] = {
            "transformations": row["how"]
        }
    return GraphSnapshot(nodes, edges)


@dataclass
class SparkRun:
    paths: Paths
    postgres: Postgres
    graph: GraphSnapshot
    driver: Driver
    seconds: float


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    try:
        server = postgres_server()
        running = server.__enter__()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"PostgreSQL could not start: {exc}", pytrace=False)
    try:
        yield running
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def spark_jars(stack: object) -> Path:
    """openlineage-spark, kafka-clients and the PostgreSQL driver from Maven Central, cached."""
    stack_module = sys.modules["lineage_stack"]
    try:
        return Path(stack_module.install_jars(stack, "spark"))
    except stack_module.StackError as exc:
        pytest.fail(f"the Spark jars could not be fetched: {exc}", pytrace=False)


def run_workloads(config: dict[str, Any], log: Path) -> None:
    config_path = log.with_suffix(".json")
    config_path.write_text(json.dumps(config))
    with log.open("wb") as out:
        result = subprocess.run(
            [sys.executable, "-m", "tests.e2e.spark_workloads", str(config_path)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=SPARK_TIMEOUT_S,
            check=False,
        )
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        pytest.fail(f"the Spark workloads failed (exit {result.returncode}):\n{tail}")


@pytest.fixture(scope="module")
def spark_run(
    kafka_bootstrap: str,
    neo4j_uri: str,
    neo4j_driver: Driver,
    spark_jars: Path,
    postgres: Postgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> SparkRun:
    clear_graph(neo4j_driver)
    work = tmp_path_factory.mktemp("spark")
    topic = unique("spark-e2e")
    # openlineage-spark's producer blocks for a minute on a topic that does not exist yet.
    create_topic(kafka_bootstrap, topic, partitions=3)
    started = time.monotonic()
    config = {
        "work": str(work),
        "lib": str(spark_jars),
        "topic": topic,
        "bootstrap": kafka_bootstrap,
        "jdbc_url": postgres.jdbc_url,
        "workloads": list(WORKLOADS),
    }
    paths = Paths(work)
    expected = expected_snapshot(expected_lineage(paths, postgres))
    worker = WorkerProcess(
        worker_env(kafka_bootstrap, neo4j_uri, topic, LINEAGE_MAX_EVENT_BYTES=str(1024 * 1024)),
        work / "worker.log",
    ).start()
    try:
        run_workloads(config, work / "spark.log")
        actual = GraphSnapshot()
        deadline = time.monotonic() + GRAPH_TIMEOUT_S
        while time.monotonic() < deadline:
            worker.assert_alive()
            actual = actual_snapshot(neo4j_driver)
            if actual == expected:
                break
            time.sleep(0.5)
    finally:
        assert worker.stop() == 0, worker.log_tail()
    return SparkRun(paths, postgres, actual, neo4j_driver, time.monotonic() - started)


def test_graph_equals_the_hand_written_lineage(spark_run: SparkRun) -> None:
    expected = expected_snapshot(expected_lineage(spark_run.paths, spark_run.postgres))
    differences = expected.diff(spark_run.graph)
    assert spark_run.graph == expected, f"expected (left) vs actual (right):\n{differences}"


def test_failed_run_carries_the_error_message(spark_run: SparkRun) -> None:
    rows = _rows(
        spark_run.driver,
        "MATCH (p:Process {state: 'FAIL'}) RETURN p.jobName AS job, p.errorMessage AS error",
    )
    assert [row["job"] for row in rows] == [f"failing_job.{INSERT}.out_never_written"]
    assert FAILURE in rows[0]["error"]
    app = _rows(
        spark_run.driver,
        "MATCH (p:Process {jobName: 'failing_job'}) RETURN p.state AS state, "
        "p.failedChildRuns AS failed",
    )
    # Spark ends the application COMPLETE; the failed child is counted on it.
    assert app == [{"state": "COMPLETE", "failed": 1}]


def test_runs_report_the_tested_versions(spark_run: SparkRun) -> None:
    rows = _rows(
        spark_run.driver,
        "MATCH (p:Process) RETURN DISTINCT p.sparkVersion AS spark, "
        "p.openlineageVersion AS adapter",
    )
    assert rows == [{"spark": "3.5.7", "adapter": "1.53.0"}]
