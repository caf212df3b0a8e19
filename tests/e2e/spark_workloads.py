"""Spark workloads with known lineage, run as separate Spark applications in one Python process.

    python -m tests.e2e.spark_workloads CONFIG.json

CONFIG names the work directory, the jar directory, the Kafka topic and bootstrap servers, the
workloads to run and (for `jdbc_write`) a JDBC URL. One JVM serves every application: a workload
is one SparkSession, stopped before the next starts, so each gets its own application run (the
root of its lineage) and openlineage-spark flushes its events on `stop()`. Input files are written
first by an application without the OpenLineage listener, so they add no lineage of their own.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812

LISTENER = "io.openlineage.spark.agent.OpenLineageSparkListener"
NAMESPACE = "e2e"
FAILURE = "every order is cursed"
STRING_SERIALIZER = "org.apache.kafka.common.serialization.StringSerializer"

ORDERS_SCHEMA = "order_id INT, customer_id INT, product_id INT, quantity INT"
CUSTOMERS_SCHEMA = "customer_id INT, name STRING, country STRING"
PRODUCTS_SCHEMA = "product_id INT, title STRING, price DOUBLE"


class Paths:
    """Where each workload reads and writes; the test derives its expected names from these."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.orders_csv = work / "data" / "orders_csv"
        self.customers_json = work / "data" / "customers_json"
        self.products_parquet = work / "data" / "products_parquet"
        self.archive_parquet = work / "data" / "archive_parquet"
        self.enriched = work / "out" / "enriched"
        self.totals = work / "out" / "totals"
        self.big_orders = work / "out" / "big_orders"
        self.small_orders = work / "out" / "small_orders"
        self.never_written = work / "out" / "never_written"
        self.warehouse = work / "warehouse"


def session(config: dict[str, Any], app: str, *, lineage: bool = True) -> SparkSession:
    builder = (
        SparkSession.builder.master("local[1]")
        .appName(app)
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", "512m")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        # Broadcasts and adaptive re-planning add SQL executions of their own; off for exact
        # lineage.
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.autoBroadcastJoinThreshold", "-1")
        .config("spark.driver.extraClassPath", f"{config['lib']}/*")
        .config("spark.sql.warehouse.dir", str(Paths(Path(config["work"])).warehouse))
    )
    if lineage:
        builder = (
            builder.config("spark.extraListeners", LISTENER)
            .config("spark.openlineage.namespace", NAMESPACE)
            .config("spark.openlineage.transport.type", "kafka")
            .config("spark.openlineage.transport.topicName", config["topic"])
            .config("spark.openlineage.transport.properties.bootstrap.servers", config["bootstrap"])
            .config("spark.openlineage.transport.properties.key.serializer", STRING_SERIALIZER)
            .config("spark.openlineage.transport.properties.value.serializer", STRING_SERIALIZER)
            .config("spark.openlineage.transport.properties.compression.type", "zstd")
        )
    return builder.getOrCreate()


def write_inputs(spark: SparkSession, paths: Paths) -> None:
    orders = spark.createDataFrame(
        [(1, 10, 100, 2), (2, 11, 101, 1), (3, 10, 101, 5), (4, 12, 100, 7)], ORDERS_SCHEMA
    )
    orders.coalesce(1).write.csv(str(paths.orders_csv), header=True)
    customers = spark.createDataFrame(
        [(10, "Ada", "UK"), (11, "Grace", "US"), (12, "Linus", "FI")], CUSTOMERS_SCHEMA
    )
    customers.coalesce(1).write.json(str(paths.customers_json))
    products = spark.createDataFrame([(100, "lamp", 20.0), (101, "desk", 150.0)], PRODUCTS_SCHEMA)
    products.coalesce(1).write.parquet(str(paths.products_parquet))
    archive = spark.createDataFrame([(90, 12, 100, 1)], ORDERS_SCHEMA)
    archive.coalesce(1).write.parquet(str(paths.archive_parquet))


def read_orders(spark: SparkSession, paths: Paths) -> DataFrame:
    return spark.read.schema(ORDERS_SCHEMA).csv(str(paths.orders_csv), header=True)


def three_way_join(spark: SparkSession, paths: Paths, config: dict[str, Any]) -> None:
    """CSV + JSON + Parquet in, a join with renamed and derived columns, Parquet out."""
    customers = spark.read.schema(CUSTOMERS_SCHEMA).json(str(paths.customers_json))
    products = spark.read.schema(PRODUCTS_SCHEMA).parquet(str(paths.products_parquet))
    enriched = (
        read_orders(spark, paths)
        .join(customers, "customer_id")
        .join(products, "product_id")
        .select(
            F.col("order_id"),
            F.col("name").alias("customer"),
            (F.col("quantity") * F.col("price")).alias("amount"),
        )
    )
    enriched.write.parquet(str(paths.enriched))


def union_aggregate(spark: SparkSession, paths: Paths, config: dict[str, Any]) -> None:
    """A union of two inputs, grouped, with an aggregated and renamed column."""
    # An explicit schema spares the footer-reading job that schema inference would run.
    archive = spark.read.schema(ORDERS_SCHEMA).parquet(str(paths.archive_parquet))
    totals = (
        read_orders(spark, paths)
        .unionByName(archive)
        .groupBy("customer_id")
        .agg(F.sum("quantity").alias("total_quantity"))
    )
    totals.write.parquet(str(paths.totals))


def several_actions(spark: SparkSession, paths: Paths, config: dict[str, Any]) -> None:
    """One application, two writes: two SQL executions, each a child run of the application."""
    orders = read_orders(spark, paths)
    orders.where("quantity >= 5").write.parquet(str(paths.big_orders))
    orders.where("quantity < 5").write.parquet(str(paths.small_orders))


def managed_tables(spark: SparkSession, paths: Paths, config: dict[str, Any]) -> None:
    """CREATE TABLE AS SELECT, then INSERT INTO and INSERT OVERWRITE of managed tables."""
    read_orders(spark, paths).createOrReplaceTempView("orders_csv")
    spark.sql(
        "CREATE TABLE orders USING parquet AS "
        "SELECT order_id, customer_id, quantity FROM orders_csv"
    )
    spark.sql("CREATE TABLE customer_quantities (customer_id INT, quantity INT) USING parquet")
    spark.sql(
        "INSERT INTO customer_quantities "
        "SELECT customer_id, quantity FROM orders WHERE quantity > 1"
    )
    spark.sql(
        "INSERT OVERWRITE TABLE customer_quantities "
        "SELECT customer_id, quantity * 2 AS quantity FROM orders"
    )


def failing_job(spark: SparkSession, paths: Paths, config: dict[str, Any]) -> None:
    """A write whose query raises at run time: the SQL execution ends FAIL."""
    failing = read_orders(spark, paths).selectExpr(
        f"CASE WHEN order_id > 0 THEN raise_error('{FAILURE}') ELSE order_id END AS order_id"
    )
    try:
        failing.write.parquet(str(paths.never_written))
    except Exception as exc:  # the failure is the point; the application itself goes on
        print(f"failing_job failed as intended: {type(exc).__name__}", flush=True)
    else:
        raise AssertionError("failing_job was expected to fail")


def jdbc_write(spark: SparkSession, paths: Paths, config: dict[str, Any]) -> None:
    """Parquet in, a table in PostgreSQL out over JDBC."""
    spark.read.schema(PRODUCTS_SCHEMA).parquet(str(paths.products_parquet)).write.jdbc(
        config["jdbc_url"],
        "public.products",
        properties={"driver": "org.postgresql.Driver"},
    )


WORKLOADS: dict[str, Callable[[SparkSession, Paths, dict[str, Any]], None]] = {
    "three_way_join": three_way_join,
    "union_aggregate": union_aggregate,
    "several_actions": several_actions,
    "managed_tables": managed_tables,
    "failing_job": failing_job,
    "jdbc_write": jdbc_write,
}


def main(config_path: str) -> None:
    config = json.loads(Path(config_path).read_text())
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    paths = Paths(Path(config["work"]))
    setup = session(config, "write_inputs", lineage=False)
    write_inputs(setup, paths)
    setup.stop()
    for name in config["workloads"]:
        spark = session(config, name)
        try:
            WORKLOADS[name](spark, paths, config)
        finally:
            spark.stop()
        print(f"workload {name} done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
