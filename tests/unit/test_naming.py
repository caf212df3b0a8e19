from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage_stream.naming import (
    DatasetIdentity,
    DatasetKey,
    identify,
    location_key,
    normalise_name,
    normalise_namespace,
)
from lineage_stream.openlineage import Dataset, RunEvent
from tests.builders import dataproc, parse_sample, wire_dataset

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("s3a://bucket", "s3://bucket"),
        ("s3n://bucket", "s3://bucket"),
        ("s3://bucket", "s3://bucket"),
        (
            "abfs://container@account.dfs.core.windows.net",
            "abfss://container@account.dfs.core.windows.net",
        ),
        (
            "abfss://container@account.dfs.core.windows.net",
            "abfss://container@account.dfs.core.windows.net",
        ),
        ("hdfs://nn:8020", "hdfs://nn:8020"),
        ("gs://bucket", "gs://bucket"),
        ("file", "file"),
        ("dbfs", "dbfs"),
        ("bigquery", "bigquery"),
        ("my-s3a://x", "my-s3a://x"),
        ("hive://metastore:9083", "hive://metastore:9083"),
    ],
)
def test_normalise_namespace(raw: str, expected: str) -> None:
    assert normalise_namespace(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/warehouse/t/", "/warehouse/t"),
        ("/warehouse/t///", "/warehouse/t"),
        ("/warehouse/t", "/warehouse/t"),
        ("db.table", "db.table"),
        ("/", "/"),
        ("//", "//"),
        ("mydata _output", "mydata _output"),
        ("sum(word_count)/", "sum(word_count)"),
    ],
)
def test_normalise_name(raw: str, expected: str) -> None:
    assert normalise_name(raw) == expected


def test_location_key_normalises_both_parts() -> None:
    assert location_key("s3a://bucket", "/data/x/") == DatasetKey("s3://bucket", "/data/x")


@pytest.mark.parametrize(
    ("namespace", "name", "alias"),
    [
        ("hdfs://nn:8020", "/warehouse/t", "hdfs://nn:8020/warehouse/t"),
        ("gs://bucket", "copied.csv", "gs://bucket/copied.csv"),
        ("s3://my-bucket-test", "my_dir/my_file.csv", "s3://my-bucket-test/my_dir/my_file.csv"),
        (
            "hive://dataproc-producer-test-m:9083",
            "default.t1",
            "hive://dataproc-producer-test-m:9083/default.t1",
        ),
        (
            "s3://my-bucket-test/my-warehouse/",
            "my_glue_database.my_output_glue_table",
            "s3://my-bucket-test/my-warehouse/my_glue_database.my_output_glue_table",
        ),
        ("file", "/tmp/x", "file/tmp/x"),
        ("bigquery", "project.dataset.table", "bigquery/project.dataset.table"),
    ],
)
def test_alias_format(namespace: str, name: str, alias: str) -> None:
    assert DatasetKey(namespace, name).alias == alias


def test_dataset_without_symlink_is_keyed_by_its_normalised_location() -> None:
    dataset = wire_dataset({"namespace": "s3a://bucket", "name": "/data/out/"})
    assert identify(dataset) == DatasetIdentity(
        key=DatasetKey("s3://bucket", "/data/out"), aliases=()
    )


def test_dataproc_table_identity() -> None:
    event = dataproc(11)
    assert isinstance(event, RunEvent)
    source, target = identify(event.inputs[0]), identify(event.outputs[0])
    assert source.key == DatasetKey("hive://dataproc-producer-test-m:9083", "default.t1")
    assert source.aliases == ("hdfs://dataproc-producer-test-m/user/hive/warehouse/t1",)
    assert target.key == DatasetKey("hive://dataproc-producer-test-m:9083", "default.t2")
    assert target.aliases == ("hdfs://dataproc-producer-test-m/user/hive/warehouse/t2",)


def test_glue_trailing_slash_symlink_namespace_is_kept() -> None:
    event = parse_sample("datahub/sample_glue.json")
    assert isinstance(event, RunEvent)
    output = identify(event.outputs[0])
    assert output.key == DatasetKey(
        "s3://my-bucket-test/my-warehouse/", "my_glue_database.my_output_glue_table"
    )
    assert output.aliases == ("s3://my-bucket-test/mydata _output",)
    source = identify(event.inputs[0])
    assert source.key == DatasetKey(
        "aws:glue:us-west-2:123456789012", "my_glue_database.my_glue_table"
    )
    assert source.aliases == ("s3://my-bucket-test/sample_data/input_data.parquet",)


def test_non_table_symlinks_do_not_change_identity() -> None:
    dataset = wire_dataset(
        {
            "namespace": "kafka://host:9092",
            "name": "topic",
            "facets": {
                "symlinks": {
                    "identifiers": [{"namespace": "other", "name": "view.v", "type": "VIEW"}]
                }
            },
        }
    )
    assert identify(dataset) == DatasetIdentity(DatasetKey("kafka://host:9092", "topic"), ())


def test_several_table_symlinks_pick_the_smallest_and_alias_the_rest() -> None:
    dataset = wire_dataset(
        {
            "namespace": "s3a://bucket",
            "name": "/warehouse/t/",
            "facets": {
                "symlinks": {
                    "identifiers": [
                        {"namespace": "hive://m:9083", "name": "db.t", "type": "TABLE"},
                        {"namespace": "aws:glue:eu", "name": "db.t", "type": "TABLE"},
                    ]
                }
            },
        }
    )
    identity = identify(dataset)
    assert identity.key == DatasetKey("aws:glue:eu", "db.t")
    assert identity.aliases == ("hive://m:9083/db.t", "s3://bucket/warehouse/t")


def test_symlink_equal_to_location_gives_no_alias() -> None:
    dataset = wire_dataset(
        {
            "namespace": "s3a://bucket",
            "name": "/t",
            "facets": {
                "symlinks": {
                    "identifiers": [{"namespace": "s3://bucket", "name": "/t/", "type": "TABLE"}]
                }
            },
        }
    )
    assert identify(dataset) == DatasetIdentity(DatasetKey("s3://bucket", "/t"), ())


_segment = st.text(alphabet="abcxyz0123_-.", min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from(["s3", "s3a", "s3n", "abfs", "abfss", "gs", "hdfs"]),
    host=_segment,
    parts=st.lists(_segment, min_size=1, max_size=4),
    slashes=st.integers(min_value=0, max_value=3),
)
def test_normalising_is_idempotent_and_scheme_spellings_meet(
    scheme: str, host: str, parts: list[str], slashes: int
) -> None:
    name = "/" + "/".join(parts) + "/" * slashes
    key = location_key(f"{scheme}://{host}", name)
    assert location_key(key.namespace, key.name) == key
    assert not key.name.endswith("/")
    canonical = {"s3a": "s3", "s3n": "s3", "abfs": "abfss"}.get(scheme, scheme)
    assert key == DatasetKey(f"{canonical}://{host}", "/" + "/".join(parts))
    assert key.alias == f"{canonical}://{host}/" + "/".join(parts)


def test_a_dataset_keeps_its_identity_and_a_changed_copy_is_identified_afresh() -> None:
    table = {"symlinks": {"identifiers": [{"namespace": "hive", "name": "db.t", "type": "TABLE"}]}}
    dataset = wire_dataset({"namespace": "s3a://b", "name": "/t", "facets": table})
    assert dataset.identity == identify(dataset)
    assert dataset.identity.key == DatasetKey("hive", "db.t")

    moved = msgspec.structs.replace(dataset, facets={})
    assert moved.identity == identify(moved) == DatasetIdentity(DatasetKey("s3://b", "/t"), ())


def test_one_location_is_identified_by_the_symlinks_each_event_sends() -> None:
    def sent_as(table: str) -> Dataset:
        link = {"namespace": "hive", "name": table, "type": "TABLE"}
        facets = {"symlinks": {"identifiers": [link]}}
        return wire_dataset({"namespace": "s3a://b", "name": "/t", "facets": facets})

    for table in ("db.one", "db.two", "db.one"):
        assert identify(sent_as(table)) == DatasetIdentity(DatasetKey("hive", table), ("s3://b/t",))


def test_facet_digests_tell_facets_apart_and_are_absent_without_the_facet() -> None:
    schema = {"schema": {"fields": [{"name": "a", "type": "int"}]}}
    same, other = dict(schema), {"schema": {"fields": [{"name": "b", "type": "int"}]}}
    digest = wire_dataset({"namespace": "s3://b", "name": "/t", "facets": schema}).schema_digest
    assert digest is not None
    assert (
        wire_dataset({"namespace": "s3://c", "name": "/u", "facets": same}).schema_digest == digest
    )
    assert (
        wire_dataset({"namespace": "s3://b", "name": "/t", "facets": other}).schema_digest != digest
    )
    assert (
        wire_dataset({"namespace": "s3://b", "name": "/t", "facets": schema}).column_lineage_digest
        is None
    )
    copied = wire_dataset({"namespace": "s3://b", "name": "/t", "facets": schema})
    assert copied.schema_digest == digest
    other_facets = wire_dataset({"namespace": "s3://b", "name": "/t", "facets": other}).facets
    assert msgspec.structs.replace(copied, facets=other_facets).schema_digest != digest
