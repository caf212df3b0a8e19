"""Every Prometheus metric lineage-stream exports, in one place, with the helpers that feed them.

Names follow Prometheus conventions: `lineage_stream_` prefix, base units in the name, `_total`
on counters. The worker serves them on `/metrics` (see `operations.py`).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from lineage_stream.errors import RejectReason
from lineage_stream.openlineage import DatasetEvent, Event, JobEvent, RunEvent
from lineage_stream.pairing import RunState

EVENTS_CONSUMED = Counter(
    "lineage_stream_events_consumed_total",
    "OpenLineage events parsed and written to the graph, by eventType "
    "(JOB_EVENT and DATASET_EVENT for static lineage).",
    ["event_type"],
)
DLQ_EVENTS = Counter(
    "lineage_stream_dlq_events_total",
    "Inputs sent to the dead-letter topic, by reason.",
    ["reason"],
)
RUNS_FINISHED = Counter(
    "lineage_stream_runs_finished_total",
    "Runs that reached a terminal state (COMPLETE, FAIL, ABORT), counted once per worker.",
    ["state"],
)
OPEN_RUNS = Gauge(
    "lineage_stream_open_runs",
    "Runs in the pairing table without a terminal event, by source partition.",
    ["partition"],
)
RUNS_ABANDONED = Counter(
    "lineage_stream_runs_abandoned_total",
    "Runs marked ABANDONED after LINEAGE_RUN_TIMEOUT_S without a terminal event.",
)
BATCH_SIZE = Histogram(
    "lineage_stream_batch_size_events",
    "Events per micro-batch.",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
)
NEO4J_WRITE_SECONDS = Histogram(
    "lineage_stream_neo4j_write_duration_seconds",
    "Duration of one successful Neo4j batch transaction.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
NEO4J_RETRIES = Counter(
    "lineage_stream_neo4j_retries_total",
    "Neo4j batch writes that failed transiently and were retried.",
)
NEO4J_DEADLOCKS = Counter(
    "lineage_stream_neo4j_deadlocks_total",
    "Batch transactions Neo4j chose as deadlock victims, retried at once (workers writing "
    "shared datasets at the same time).",
)
CONSUMER_LAG = Gauge(
    "lineage_stream_consumer_lag_messages",
    "Messages between the committed offset and the end of each assigned source partition.",
    ["topic", "partition"],
)
LAST_WRITE = Gauge(
    "lineage_stream_last_write_timestamp_seconds",
    "Unix time of the last successful Neo4j write.",
)


def event_type_label(event: Event) -> str:
    if isinstance(event, RunEvent):
        return event.event_type.value
    if isinstance(event, JobEvent):
        return "JOB_EVENT"
    assert isinstance(event, DatasetEvent)
    return "DATASET_EVENT"


def record_batch(size: int, accepted: Iterable[Event], rejected: Iterable[RejectReason]) -> None:
    BATCH_SIZE.observe(size)
    for event in accepted:
        EVENTS_CONSUMED.labels(event_type_label(event)).inc()
    for reason in rejected:
        DLQ_EVENTS.labels(reason.value).inc()


def record_fold(partition: int, before: RunState | None, after: RunState) -> None:
    """Count a run that this event finished, and keep the open-run gauge in step."""
    was_open = before is not None and before.terminal is None
    if after.terminal is not None and not (before is not None and before.terminal is not None):
        RUNS_FINISHED.labels(after.state.value).inc()
    is_open = after.terminal is None
    if is_open != was_open:
        OPEN_RUNS.labels(str(partition)).inc(1 if is_open else -1)


def record_sweep(partition: int, open_runs: int, abandoned: int) -> None:
    """The sweep sees every run of the partition: the gauge becomes exact again."""
    OPEN_RUNS.labels(str(partition)).set(open_runs)
    RUNS_ABANDONED.inc(abandoned)
