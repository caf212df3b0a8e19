"""The pure parts of the query layer: parameters, aliases, the CLI's JSON and arguments."""

from __future__ import annotations

import pytest

from lineage_stream import queries
from lineage_stream.cli import impact_answer, query_arguments
from lineage_stream.errors import ConfigurationError

pytestmark = pytest.mark.unit


def test_aliases_are_normalised_as_on_ingestion() -> None:
    assert queries.alias_of("s3a://lake/warehouse/t/") == "s3://lake/warehouse/t"
    assert queries.dataset_parameters("s3n://lake", "/raw/") == {
        "namespace": "s3n://lake",
        "name": "/raw/",
        "alias": "s3://lake/raw",
    }
    assert queries.dataset_parameters("hive://m:9083", "db.t")["alias"] == "hive://m:9083/db.t"


@pytest.mark.parametrize(("depth", "limit"), [(0, 10), (queries.MAX_DEPTH + 1, 10), (3, 0)])
def test_out_of_bounds_depth_or_limit_is_refused_before_querying(depth: int, limit: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        queries.downstream(None, "ns", "name", depth=depth, limit=limit)  # type: ignore[arg-type]


def test_impact_answer_lists_jobs_once_sorted() -> None:
    via_a = [{"namespace": "etl", "name": "b"}, {"namespace": "etl", "name": "a"}]
    rows = [
        {"namespace": "ns", "name": "x", "distance": 1, "via": via_a},
        {"namespace": "ns", "name": "y", "distance": 2, "via": [{"namespace": "etl", "name": "a"}]},
    ]
    assert impact_answer({"namespace": "ns", "name": "root", "aliases": []}, rows, None) == {
        "root": {"namespace": "ns", "name": "root"},
        "datasets": [
            {"namespace": "ns", "name": "x", "distance": 1},
            {"namespace": "ns", "name": "y", "distance": 2},
        ],
        "jobs": [{"namespace": "etl", "name": "a"}, {"namespace": "etl", "name": "b"}],
    }


def test_column_impact_answer_gives_each_dataset_its_nearest_field() -> None:
    rows = [
        {"namespace": "ns", "name": "x", "field": "f", "distance": 1, "via": []},
        {"namespace": "ns", "name": "x", "field": "g", "distance": 2, "via": []},
        {"namespace": "ns", "name": "w", "field": "h", "distance": 2, "via": []},
    ]
    answer = impact_answer({"namespace": "ns", "name": "root"}, rows, "c")
    assert answer["root"] == {"namespace": "ns", "name": "root", "field": "c"}
    assert answer["datasets"] == [
        {"namespace": "ns", "name": "x", "distance": 1},
        {"namespace": "ns", "name": "w", "distance": 2},
    ]
    assert [f["field"] for f in answer["fields"]] == ["f", "g", "h"]


def test_query_parameters_are_typed_by_the_function_signature() -> None:
    named = queries.QUERIES["downstream"]
    arguments = query_arguments(named, ["namespace=s3://a", "name=/b=c", "depth=3"])
    assert arguments == {"namespace": "s3://a", "name": "/b=c", "depth": 3}


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (["namespace"], "expected key=value"),
        (["namespace=a", "name=b", "depth=deep"], "not a whole number"),
        (["namespace=a", "name=b", "graph=x"], "not a parameter"),
        (["namespace=a"], "missing --param for: name"),
    ],
)
def test_bad_query_parameters_are_usage_errors(assignments: list[str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        query_arguments(queries.QUERIES["downstream"], assignments)
