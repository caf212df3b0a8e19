"""The benchmark's fleet generator: deterministic, valid OpenLineage, Spark-shaped."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime

import orjson
import pytest

from bench.generator import FleetProfile, GeneratedEvent, fleet
from lineage_stream.cli import spark_key
from lineage_stream.openlineage import (
    RunEvent,
    column_lineage_of,
    facet_of,
    parent_of,
    parse,
    schema_of,
    symlinks_in,
)

pytestmark = pytest.mark.unit

SMALL = FleetProfile(templates=30, datasets=200, large_event_rate=0.0)
EVENTS = 1000


@pytest.fixture(scope="module")
def events() -> list[GeneratedEvent]:
    return list(fleet(seed=11, events=EVENTS, profile=SMALL))


@pytest.fixture(scope="module")
def parsed(events: list[GeneratedEvent]) -> list[RunEvent]:
    now = datetime.now(UTC)
    result = []
    for event in events:
        model = parse(event.value, max_bytes=8 * 1024 * 1024, now=now)
        assert isinstance(model, RunEvent)
        result.append(model)
    return result


def test_same_seed_gives_the_same_bytes(events: list[GeneratedEvent]) -> None:
    again = list(fleet(seed=11, events=EVENTS, profile=SMALL))
    assert [(e.key, e.value) for e in again] == [(e.key, e.value) for e in events]


def test_another_seed_gives_other_events(events: list[GeneratedEvent]) -> None:
    other = list(fleet(seed=12, events=EVENTS, profile=SMALL))
    assert {e.run_id for e in other}.isdisjoint({e.run_id for e in events})


def test_yields_exactly_the_requested_count(events: list[GeneratedEvent]) -> None:
    assert len(events) == EVENTS


def test_every_event_parses_and_matches_its_metadata(
    events: list[GeneratedEvent], parsed: list[RunEvent]
) -> None:
    for event, model in zip(events, parsed, strict=True):
        assert str(model.run.run_id) == event.run_id
        assert model.event_type.value == event.event_type
        assert model.event_time == event.event_time


def test_keys_are_what_openlineage_spark_sends(events: list[GeneratedEvent]) -> None:
    for event in events:
        assert event.key == spark_key(orjson.loads(event.value))
        assert event.key.startswith(b"run:default/")


def test_events_come_in_event_time_order(events: list[GeneratedEvent]) -> None:
    times = [e.event_time for e in events]
    assert times == sorted(times)


def test_child_runs_point_at_their_application_run(parsed: list[RunEvent]) -> None:
    applications = {str(e.run.run_id): e.job.name for e in parsed if parent_of(e.run) is None}
    children: dict[str, set[str]] = defaultdict(set)
    for event in parsed:
        parent = parent_of(event.run)
        if parent is None:
            continue
        assert event.job.name.startswith(parent.job_name + ".")
        root = (facet_of(event.run.facets, "parent") or {})["root"]
        assert root["run"]["runId"] == str(parent.run_id)
        if str(parent.run_id) in applications:
            children[str(parent.run_id)].add(str(event.run.run_id))
    assert children, "no application had a child run in the window"
    assert max(len(runs) for runs in children.values()) <= SMALL.max_children


def test_each_child_run_starts_then_ends_once(
    events: list[GeneratedEvent], parsed: list[RunEvent]
) -> None:
    by_run: dict[str, list[str]] = defaultdict(list)
    for event, model in zip(events, parsed, strict=True):
        if parent_of(model.run) is not None:
            by_run[event.run_id].append(event.event_type)
    for types in by_run.values():
        assert types[0] == "START"
        assert all(t == "RUNNING" for t in types[1:-1])
        assert types.count("COMPLETE") + types.count("FAIL") <= 1
    finished = Counter(types[-1] for types in by_run.values() if types[-1] != "RUNNING")
    assert finished["COMPLETE"] > 0
    assert finished["FAIL"] > 0


def test_datasets_have_realistic_counts_and_schemas(parsed: list[RunEvent]) -> None:
    children = [e for e in parsed if parent_of(e.run) is not None]
    for event in children:
        assert 1 <= len(event.inputs) <= SMALL.max_inputs
        assert 1 <= len(event.outputs) <= SMALL.max_outputs
        for dataset in [*event.inputs, *event.outputs]:
            schema = schema_of(dataset)
            assert schema is not None
            assert SMALL.min_columns <= len(schema) <= SMALL.max_columns
    assert any(symlinks_in(d.facets.get("symlinks")) for e in children for d in e.inputs)
    assert any(column_lineage_of(d) for e in children for d in e.outputs)


def test_dataset_popularity_is_skewed(parsed: list[RunEvent]) -> None:
    reads = Counter(
        (d.namespace, d.name) for e in parsed if e.event_type.value == "START" for d in e.inputs
    )
    counts = sorted(reads.values(), reverse=True)
    top_decile = sum(counts[: max(1, len(counts) // 10)])
    assert top_decile > 0.3 * sum(counts), "the hottest tenth of datasets should dominate reads"


def test_large_tail_events_are_megabytes_and_still_parse() -> None:
    profile = FleetProfile(templates=10, datasets=50, large_event_rate=0.05)
    large = [e for e in fleet(seed=3, events=200, profile=profile) if len(e.value) > 1_000_000]
    assert large
    now = datetime.now(UTC)
    for event in large:
        assert len(event.value) <= 5_100_000
        assert isinstance(parse(event.value, max_bytes=8 * 1024 * 1024, now=now), RunEvent)


def test_a_job_derives_the_same_columns_on_every_run(parsed: list[RunEvent]) -> None:
    # openlineage-spark derives column lineage from the query plan, which a job's SQL fixes (two
    # queries of one application writing one table share a job name, hence the datasets in the key).
    facets: defaultdict[tuple[str, str, str], set[bytes]] = defaultdict(set)
    runs: defaultdict[str, set[str]] = defaultdict(set)
    for event in parsed:
        for output in event.outputs:
            lineage = column_lineage_of(output)
            if lineage is not None:
                datasets = ",".join(d.name for d in (*event.inputs, *event.outputs))
                facets[(event.job.name, output.name, datasets)].add(
                    orjson.dumps(lineage.model_dump())
                )
                runs[event.job.name].add(str(event.run.run_id))
    repeated = [job for job, run_ids in runs.items() if len(run_ids) > 1]
    assert repeated, "no job ran twice: the sample is too small to tell"
    assert all(len(variants) == 1 for variants in facets.values())
