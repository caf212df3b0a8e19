"""The metric helpers: a run counts as finished once, the open-run gauge follows transitions."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from lineage_stream import metrics
from lineage_stream.errors import RejectReason
from lineage_stream.openlineage import RunEvent
from lineage_stream.pairing import RunState, fold
from tests.builders import parsed, run_event

pytestmark = pytest.mark.unit

PARTITION = 97  # a partition no other test touches, so the gauge starts at zero


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def state(*event_types: str) -> RunState:
    current = None
    for n, event_type in enumerate(event_types):
        event = parsed(run_event(event_type, at=f"2024-01-01T00:00:0{n}Z"))
        assert isinstance(event, RunEvent)
        current = fold(current, event)
    assert current is not None
    return current


def test_a_run_is_finished_once_and_open_until_then() -> None:
    finished = sample("lineage_stream_runs_finished_total", state="FAIL")
    started, running = state("START"), state("START", "RUNNING")
    failed, failed_again = state("START", "FAIL"), state("START", "FAIL", "COMPLETE")
    metrics.record_fold(PARTITION, None, started)
    metrics.record_fold(PARTITION, started, running)
    assert sample("lineage_stream_open_runs", partition=str(PARTITION)) == 1
    metrics.record_fold(PARTITION, running, failed)
    metrics.record_fold(PARTITION, failed, failed_again)
    assert sample("lineage_stream_open_runs", partition=str(PARTITION)) == 0
    assert sample("lineage_stream_runs_finished_total", state="FAIL") == finished + 1


def test_a_sweep_makes_the_gauge_exact_and_counts_abandoned_runs() -> None:
    abandoned = sample("lineage_stream_runs_abandoned_total")
    metrics.record_sweep(PARTITION + 1, open_runs=4, abandoned=2)
    assert sample("lineage_stream_open_runs", partition=str(PARTITION + 1)) == 4
    assert sample("lineage_stream_runs_abandoned_total") == abandoned + 2


def test_a_batch_counts_events_by_type_and_dead_letters_by_reason() -> None:
    before = sample("lineage_stream_events_consumed_total", event_type="OTHER")
    too_large = sample("lineage_stream_dlq_events_total", reason="too_large")
    batches = sample("lineage_stream_batch_size_events_count")
    events = [parsed(run_event(None)), parsed(run_event(None))]
    metrics.record_batch(3, events, [RejectReason.TOO_LARGE])
    assert sample("lineage_stream_events_consumed_total", event_type="OTHER") == before + 2
    assert sample("lineage_stream_dlq_events_total", reason="too_large") == too_large + 1
    assert sample("lineage_stream_batch_size_events_count") == batches + 1
