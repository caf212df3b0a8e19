"""The fixtures are real: Kafka round-trips every codec; Neo4j enforces constraints and auth."""

from __future__ import annotations

import pytest
from neo4j import Driver, GraphDatabase
from neo4j.exceptions import AuthError, ConstraintError

from tests.harness import consume_all, produce, unique

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_kafka_round_trips_each_codec(kafka_bootstrap: str, codec: str) -> None:
    topic = unique(f"codec-{codec}")
    sent = [(f"k{i}".encode(), f"value {i} {codec}".encode() * 50) for i in range(20)]
    produce(kafka_bootstrap, topic, sent, compression=codec)
    received = consume_all(kafka_bootstrap, topic, expected=len(sent))
    assert [(m.key, m.value) for m in received] == sent


def test_kafka_accepts_a_ten_megabyte_event(kafka_bootstrap: str) -> None:
    topic = unique("large")
    value = b"x" * (10 * 1024 * 1024)
    produce(kafka_bootstrap, topic, [(None, value)])
    (received,) = consume_all(kafka_bootstrap, topic, expected=1)
    assert received.value == value


def test_neo4j_enforces_uniqueness_constraints(neo4j_driver: Driver) -> None:
    label = unique("Probe").replace("-", "_")
    neo4j_driver.execute_query(
        f"CREATE CONSTRAINT {label}_key IF NOT EXISTS FOR (n:{label}) REQUIRE n.key IS UNIQUE"
    )
    try:
        neo4j_driver.execute_query(f"CREATE (:{label} {{key: $key}})", key="a")
        records, _, _ = neo4j_driver.execute_query(f"MATCH (n:{label}) RETURN n.key AS key")
        assert [r["key"] for r in records] == ["a"]
        with pytest.raises(ConstraintError):
            neo4j_driver.execute_query(f"CREATE (:{label} {{key: $key}})", key="a")
    finally:
        neo4j_driver.execute_query(f"MATCH (n:{label}) DELETE n")
        neo4j_driver.execute_query(f"DROP CONSTRAINT {label}_key IF EXISTS")


def test_neo4j_refuses_a_wrong_password(neo4j_uri: str) -> None:
    with (
        GraphDatabase.driver(neo4j_uri, auth=("neo4j", "not-the-password")) as driver,
        pytest.raises(AuthError),
    ):
        driver.verify_connectivity()
