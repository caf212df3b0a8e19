from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage_stream.graph import process_row
from lineage_stream.naming import DatasetKey
from lineage_stream.openlineage import RunEvent
from lineage_stream.pairing import (
    RunState,
    RunStateName,
    decode_state,
    encode_state,
    fold,
    merge,
    summarize,
)
from tests.builders import DATAPROC, RUN_ID, dataproc, dataset, parsed, run_event, sample

pytestmark = pytest.mark.unit

T0 = datetime(2024, 1, 1, tzinfo=UTC)
APP_RUN = "0192a000-0000-7000-8000-0000000000aa"
OTHER_APP_RUN = "0192a000-0000-7000-8000-0000000000bb"


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def ev(event_type: str | None, seconds: float, **kwargs: Any) -> RunEvent:
    event = parsed(run_event(event_type, at=at(seconds), **kwargs))
    assert isinstance(event, RunEvent)
    return event


def fold_all(events: list[RunEvent]) -> RunState:
    state: RunState | None = None
    for event in events:
        state = fold(state, event)
    assert state is not None
    return state


def test_single_start_is_running() -> None:
    state = summarize(ev("START", 0))
    assert state.state is RunStateName.RUNNING
    assert state.started_at == T0
    assert state.ended_at is None
    assert state.run_id == RUN_ID


def test_complete_before_start_gives_complete_run() -> None:
    state = fold_all([ev("COMPLETE", 10), ev("START", 0)])
    assert state.state is RunStateName.COMPLETE
    assert state.started_at == T0
    assert state.ended_at == T0 + timedelta(seconds=10)
    assert state.duration_ms == 10_000


@pytest.mark.parametrize("failure", ["FAIL", "ABORT"])
def test_fail_outranks_complete_whatever_the_order(failure: str) -> None:
    complete, failed = ev("COMPLETE", 5), ev(failure, 9, error_message="boom")
    for order in ([complete, failed], [failed, complete]):
        state = fold_all([ev("START", 0), *order])
        assert state.state is RunStateName(failure)
        assert state.ended_at == T0 + timedelta(seconds=9)
        assert state.error_message == "boom"
    earlier_failure = fold_all([ev(failure, 1), ev("COMPLETE", 9)])
    assert earlier_failure.state is RunStateName(failure)
    assert earlier_failure.ended_at == T0 + timedelta(seconds=1)


def test_running_after_complete_never_regresses() -> None:
    state = fold_all([ev("START", 0), ev("COMPLETE", 5), ev("RUNNING", 8), ev("START", 9)])
    assert state.state is RunStateName.COMPLETE
    assert state.ended_at == T0 + timedelta(seconds=5)
    assert state.started_at == T0
    assert state.last_event_at == T0 + timedelta(seconds=9)


def test_earliest_terminal_of_same_rank_decides() -> None:
    state = fold_all([ev("COMPLETE", 7), ev("COMPLETE", 3), ev("COMPLETE", 5)])
    assert state.ended_at == T0 + timedelta(seconds=3)
    failed = fold_all([ev("FAIL", 7, error_message="late"), ev("FAIL", 3, error_message="first")])
    assert failed.state is RunStateName.FAIL
    assert failed.ended_at == T0 + timedelta(seconds=3)
    assert failed.error_message == "first"


def test_fail_and_abort_at_same_rank_earliest_wins() -> None:
    assert fold_all([ev("FAIL", 4), ev("ABORT", 2)]).state is RunStateName.ABORT
    assert fold_all([ev("ABORT", 4), ev("FAIL", 2)]).state is RunStateName.FAIL


def test_start_time_is_earliest_start() -> None:
    state = fold_all([ev("START", 5), ev("RUNNING", 1), ev("START", 3), ev("START", 9)])
    assert state.started_at == T0 + timedelta(seconds=3)
    assert state.first_event_at == T0 + timedelta(seconds=1)
    assert state.last_event_at == T0 + timedelta(seconds=9)


def test_run_without_start_has_no_duration() -> None:
    state = fold_all([ev("RUNNING", 1), ev("COMPLETE", 4)])
    assert state.state is RunStateName.COMPLETE
    assert state.started_at is None
    assert state.duration_ms is None
    assert fold_all([ev("START", 0), ev("RUNNING", 1)]).duration_ms is None


def test_duration_is_in_milliseconds() -> None:
    assert fold_all([ev("START", 0.25), ev("COMPLETE", 1.5)]).duration_ms == 1250


def test_spark_exception_message_becomes_error_message() -> None:
    state = fold_all([ev("START", 0), ev("FAIL", 2, spark_exception="AccessDenied")])
    assert state.error_message == "AccessDenied"


def test_error_message_facet_preferred_over_spark_exception() -> None:
    state = summarize(ev("FAIL", 2, spark_exception="spark", error_message="spec"))
    assert state.error_message == "spec"


def test_error_message_comes_from_the_deciding_event_only() -> None:
    state = fold_all([ev("COMPLETE", 1), ev("RUNNING", 0, error_message="noise")])
    assert state.error_message is None
    failed = fold_all([ev("FAIL", 3), ev("FAIL", 5, error_message="later")])
    assert failed.error_message is None


def test_real_failed_spark_run_carries_its_exception() -> None:
    raw = json.loads(sample("datahub/sample_failed_spark.json"))
    event = parsed(raw)
    assert isinstance(event, RunEvent)
    state = summarize(event)
    assert state.state is RunStateName.FAIL
    assert state.error_message == raw["run"]["facets"]["spark.exception"]["message"]
    assert state.started_at is None


def test_self_parent_is_ignored() -> None:
    state = summarize(ev("START", 0, parent=(RUN_ID, "ns", "name")))
    assert state.parent is not None
    assert state.parent_run_id is None
    other = summarize(ev("START", 0, parent=(APP_RUN, "ns", "app")))
    assert other.parent_run_id == APP_RUN


def test_stale_run_is_abandoned_but_never_streaming() -> None:
    timeout = timedelta(hours=1)
    state = summarize(ev("START", 0))
    assert not state.is_stale(T0 + timedelta(minutes=59), timeout)
    assert state.is_stale(T0 + timedelta(minutes=61), timeout)
    abandoned = state.abandon(timedelta(hours=1))
    assert abandoned.state is RunStateName.ABANDONED
    assert abandoned.ended_at is None
    streaming = summarize(ev("START", 0, processing_type="STREAMING"))
    assert not streaming.is_stale(T0 + timedelta(days=30), timeout)
    lower = summarize(ev("START", 0, processing_type="streaming"))
    assert not lower.is_stale(T0 + timedelta(days=30), timeout)
    done = fold_all([ev("START", 0), ev("COMPLETE", 1)])
    assert not done.is_stale(T0 + timedelta(days=30), timeout)


def test_later_event_revives_abandoned_run() -> None:
    abandoned = summarize(ev("START", 10)).abandon(timedelta(hours=1))
    revived = fold(abandoned, ev("RUNNING", 20))
    assert revived.state is RunStateName.RUNNING
    assert not revived.abandoned
    assert fold(abandoned, ev("COMPLETE", 20)).state is RunStateName.COMPLETE
    # An event older than the abandonment's last event shows nothing new.
    assert fold(abandoned, ev("RUNNING", 5)).state is RunStateName.ABANDONED
    assert fold(abandoned, ev("START", 10)).state is RunStateName.ABANDONED


def test_an_abandoned_run_is_abandoned_at_its_last_event_plus_the_timeout() -> None:
    abandoned = fold_all([ev("START", 10), ev("RUNNING", 40)]).abandon(timedelta(hours=1))
    assert abandoned.abandoned_at == T0 + timedelta(seconds=40, hours=1)
    assert process_row(abandoned)["abandonedAt"] == abandoned.abandoned_at
    # Abandoned again by a sweep with a longer timeout: the later time, whatever the order.
    longer = fold_all([ev("START", 10), ev("RUNNING", 40)]).abandon(timedelta(hours=2))
    assert merge(abandoned, longer).abandoned_at == merge(longer, abandoned).abandoned_at
    assert merge(abandoned, longer).abandoned_at == T0 + timedelta(seconds=40, hours=2)
    revived = fold(abandoned, ev("RUNNING", 50))
    assert revived.abandoned_at is None
    assert process_row(revived)["abandonedAt"] is None
    completed = fold(abandoned, ev("COMPLETE", 5))
    assert process_row(completed)["abandonedAt"] is None


def test_late_terminal_event_completes_an_abandoned_run() -> None:
    abandoned = summarize(ev("START", 10)).abandon(timedelta(hours=1))
    completed = fold(abandoned, ev("COMPLETE", 5))
    assert completed.state is RunStateName.COMPLETE


def test_facets_take_value_of_latest_event_carrying_them() -> None:
    state = fold_all(
        [
            ev("START", 1, job_type="APPLICATION", parent=(APP_RUN, "ns", "app")),
            ev("RUNNING", 9),
            ev("COMPLETE", 5, job_type="SQL_JOB", parent=(OTHER_APP_RUN, "ns", "app2")),
            ev("RUNNING", 3, job_type="RDD_JOB", job=("ns", "renamed")),
        ]
    )
    assert state.job_type is not None
    assert state.job_type.value == "SQL_JOB"
    assert state.job_type.at == T0 + timedelta(seconds=5)
    assert state.parent_run_id == OTHER_APP_RUN
    assert state.job.value == ("ns", "name")
    assert state.job.at == T0 + timedelta(seconds=9)


def test_datasets_are_unioned() -> None:
    state = fold_all(
        [
            ev("START", 0, inputs=[dataset("s3a://b", "/in/")]),
            ev("RUNNING", 1, outputs=[dataset("hdfs://nn", "/w/t", symlink=("hive://m", "db.t"))]),
            ev("COMPLETE", 2, inputs=[dataset("s3://b", "/in"), dataset("gs://c", "/x")]),
        ]
    )
    assert state.inputs == {DatasetKey("s3://b", "/in"), DatasetKey("gs://c", "/x")}
    assert state.outputs == {DatasetKey("hive://m", "db.t")}


def test_merge_refuses_different_runs() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        merge(summarize(ev("START", 0)), summarize(ev("START", 0, run_id=APP_RUN)))


def test_encode_decode_round_trip_of_a_rich_state() -> None:
    state = fold_all(
        [
            ev("START", 0, parent=(APP_RUN, "ns", "app"), job_type="SQL_JOB"),
            ev(
                "FAIL",
                3,
                spark_exception="x",
                outputs=[dataset("s3a://b", "/o", symlink=("h", "d.t"))],
            ),
        ]
    ).abandon(timedelta(hours=1))
    decoded = decode_state(encode_state(state))
    assert decoded == state
    assert decoded.outputs == {DatasetKey("h", "d.t")}
    assert decoded.parent_run_id == APP_RUN
    assert decoded.state is RunStateName.FAIL


# The real Dataproc application: 16 events, 7 runs.


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _dataproc_expectations() -> dict[str, dict[str, Any]]:
    expected: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"started": None, "ended": None, "state": "RUNNING", "parent": None, "job": None}
    )
    for number in range(1, 17):
        raw = json.loads(sample(f"{DATAPROC}/{number}.json"))
        run = expected[raw["run"]["runId"]]
        when = _iso(raw["eventTime"])
        if raw["eventType"] == "START":
            run["started"] = when if run["started"] is None else min(run["started"], when)
        if raw["eventType"] == "COMPLETE":
            run["ended"], run["state"] = when, "COMPLETE"
        parent = raw["run"]["facets"].get("parent")
        if parent:
            run["parent"] = parent["run"]["runId"]
        run["job"] = (raw["job"]["namespace"], raw["job"]["name"])
    return dict(expected)


def _dataproc_runs(numbers: list[int]) -> dict[str, RunState]:
    states: dict[str, RunState] = {}
    for number in numbers:
        event = dataproc(number)
        assert isinstance(event, RunEvent)
        run_id = str(event.run.run_id)
        states[run_id] = fold(states.get(run_id), event)
    return states


def test_dataproc_application_folds_into_seven_runs() -> None:
    states = _dataproc_runs(list(range(1, 17)))
    expected = _dataproc_expectations()
    assert len(states) == 7
    assert set(states) == set(expected)
    for run_id, want in expected.items():
        state = states[run_id]
        assert state.state.value == want["state"], run_id
        assert state.started_at == want["started"], run_id
        assert state.ended_at == want["ended"], run_id
        assert state.parent_run_id == want["parent"], run_id
        assert state.job.value == want["job"], run_id


def test_dataproc_literal_spot_checks() -> None:
    states = _dataproc_runs(list(range(1, 17)))
    app = states["019299c5-12f5-7946-b5b2-c6abab662e20"]
    assert app.parent_run_id is None
    assert app.started_at == datetime(2024, 10, 17, 9, 17, 51, 101000, tzinfo=UTC)
    assert app.ended_at == datetime(2024, 10, 17, 9, 18, 32, 504000, tzinfo=UTC)
    assert app.job_type is not None
    assert app.job_type.value == "APPLICATION"
    no_start = states["019299c5-4630-75cc-a27a-33e6e55ec50d"]
    assert no_start.state is RunStateName.COMPLETE
    assert no_start.started_at is None
    assert no_start.duration_ms is None
    insert = states["019299c5-73cf-7069-a70f-74eb8070b577"]
    assert insert.duration_ms == 2442
    assert insert.inputs == {DatasetKey("hive://dataproc-producer-test-m:9083", "default.t1")}
    assert insert.outputs == {DatasetKey("hive://dataproc-producer-test-m:9083", "default.t2")}
    assert insert.engine_version is not None
    assert insert.engine_version.value == "3.5.1"
    assert insert.processing_type is not None
    assert insert.processing_type.value == "BATCH"


@settings(max_examples=100, deadline=None)
@given(st.permutations(list(range(1, 17))), st.lists(st.integers(1, 16), max_size=8))
def test_dataproc_permutations_give_identical_states(
    order: list[int], duplicates: list[int]
) -> None:
    assert _dataproc_runs(order + duplicates) == _DATAPROC_IN_ORDER


_DATAPROC_IN_ORDER = _dataproc_runs(list(range(1, 17)))


# Generated runs.

_DATASETS = [
    dataset("s3a://bucket", "/in/a"),
    dataset("s3://bucket", "/in/a/"),
    dataset("hdfs://nn", "/w/t1", symlink=("hive://m:9083", "db.t1")),
    dataset("gs://g", "copied.csv"),
    dataset("bigquery", "p.d.t"),
]
# The identity each generated dataset must get, written out by hand.
_KEYS = {
    ("s3a://bucket", "/in/a"): DatasetKey("s3://bucket", "/in/a"),
    ("s3://bucket", "/in/a/"): DatasetKey("s3://bucket", "/in/a"),
    ("hdfs://nn", "/w/t1"): DatasetKey("hive://m:9083", "db.t1"),
    ("gs://g", "copied.csv"): DatasetKey("gs://g", "copied.csv"),
    ("bigquery", "p.d.t"): DatasetKey("bigquery", "p.d.t"),
}


@st.composite
def event_docs(draw: st.DrawFn) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if draw(st.booleans()):
        kwargs["parent"] = draw(
            st.sampled_from(
                [(APP_RUN, "ns", "app"), (OTHER_APP_RUN, "ns", "b"), (RUN_ID, "ns", "me")]
            )
        )
    if draw(st.booleans()):
        kwargs["job_type"] = draw(st.sampled_from(["SQL_JOB", "RDD_JOB", "JOB"]))
    if draw(st.booleans()):
        kwargs["processing_type"] = draw(st.sampled_from(["BATCH", "STREAMING"]))
    if draw(st.booleans()):
        kwargs["error_message"] = draw(st.sampled_from(["e1", "e2"]))
    if draw(st.booleans()):
        kwargs["spark_exception"] = draw(st.sampled_from(["s1", "s2"]))
    return run_event(
        draw(st.sampled_from(["START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER", None])),
        at=at(draw(st.integers(min_value=0, max_value=30)) / 4),
        job=("ns", draw(st.sampled_from(["name", "other"]))),
        inputs=draw(st.lists(st.sampled_from(_DATASETS), max_size=3)),
        outputs=draw(st.lists(st.sampled_from(_DATASETS), max_size=2)),
        **kwargs,
    )


def _events(docs: list[dict[str, Any]]) -> list[RunEvent]:
    events = [parsed(doc) for doc in docs]
    assert all(isinstance(event, RunEvent) for event in events)
    return events  # type: ignore[return-value]


@settings(max_examples=200, deadline=None)
@given(st.lists(event_docs(), min_size=1, max_size=8), st.data())
def test_any_order_and_duplication_folds_to_the_same_state(
    docs: list[dict[str, Any]], data: st.DataObject
) -> None:
    events = _events(docs)
    shuffled = data.draw(st.permutations(events))
    extra = data.draw(st.lists(st.sampled_from(events), max_size=6))
    reference = fold_all(events)
    assert fold_all([*shuffled, *extra]) == reference
    assert decode_state(encode_state(reference)) == reference


@settings(max_examples=150, deadline=None)
@given(st.lists(event_docs(), min_size=1, max_size=6))
def test_generated_state_matches_the_rules(docs: list[dict[str, Any]]) -> None:
    events = _events(docs)
    state = fold_all(events)
    starts = [e.event_time for e in events if e.event_type == "START"]
    assert state.started_at == (min(starts) if starts else None)
    assert state.first_event_at == min(e.event_time for e in events)
    assert state.last_event_at == max(e.event_time for e in events)
    failures = [e for e in events if e.event_type in ("FAIL", "ABORT")]
    completes = [e for e in events if e.event_type == "COMPLETE"]
    deciders = failures or completes
    if not deciders:
        assert state.state is RunStateName.RUNNING
        assert state.ended_at is None
    else:
        assert state.ended_at == min(e.event_time for e in deciders)
        assert state.state.value in {e.event_type.value for e in deciders}
    assert state.inputs == {_KEYS[d["namespace"], d["name"]] for doc in docs for d in doc["inputs"]}
    assert state.outputs == {
        _KEYS[d["namespace"], d["name"]] for doc in docs for d in doc["outputs"]
    }


def _state(docs: list[dict[str, Any]], abandoned_after: timedelta | None) -> RunState:
    state = fold_all(_events(docs))
    return state if abandoned_after is None else state.abandon(abandoned_after)


_states = st.builds(
    _state,
    st.lists(event_docs(), min_size=1, max_size=4),
    st.none() | st.sampled_from([timedelta(hours=1), timedelta(hours=6)]),
)


@settings(max_examples=150, deadline=None)
@given(_states, _states, _states)
def test_merge_is_a_join(a: RunState, b: RunState, c: RunState) -> None:
    assert merge(a, b) == merge(b, a)
    assert merge(merge(a, b), c) == merge(a, merge(b, c))
    assert merge(a, a) == a
    assert merge(a, merge(a, b)) == merge(a, b)


@settings(max_examples=100, deadline=None)
@given(_states)
def test_encode_decode_round_trip(state: RunState) -> None:
    assert decode_state(encode_state(state)) == state
    assert decode_state(encode_state(state)).state is state.state


def test_merge_of_folds_equals_fold_of_all() -> None:
    first = [ev("START", 0), ev("RUNNING", 2, job_type="SQL_JOB")]
    second = [ev("COMPLETE", 4), ev("RUNNING", 3, processing_type="BATCH")]
    assert merge(fold_all(first), fold_all(second)) == fold_all(first + second)
    assert reduce(fold, [*second, *first], None) == fold_all(first + second)
