"""Stored runs: the partition read from their first bytes, and the format earlier releases wrote."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lineage_stream.openlineage import RunEvent
from lineage_stream.pairing import RunState, fold, summarize
from lineage_stream.pipeline import StoredRun, stored_partition
from tests.builders import dataset, parsed, run_event

pytestmark = pytest.mark.unit


def state_of(kind: str) -> StoredRun:
    event = parsed(run_event(kind, run_id=str(uuid.uuid4()), job=("ns", "job")))
    assert isinstance(event, RunEvent)
    return StoredRun(partition=0, seen_at=datetime.now(UTC), state=summarize(event))


@given(st.integers(min_value=0, max_value=1_000_000), st.sampled_from(["START", "COMPLETE"]))
def test_the_prefix_names_the_partition_the_model_holds(partition: int, kind: str) -> None:
    stored = msgspec.structs.replace(state_of(kind), partition=partition)
    raw = stored.encode()

    assert stored_partition(raw) == partition == StoredRun.decode(raw).partition


def test_json_in_another_key_order_is_validated_instead() -> None:
    document = orjson.loads(state_of("START").encode())
    reordered = {"seen_at": document["seen_at"], "state": document["state"], "partition": 7}

    assert stored_partition(orjson.dumps(reordered)) == 7


# Written by the release whose pairing models were pydantic's (541448f), for these events.
PYDANTIC_STORED_RUN = b'{"partition":4,"seen_at":"2024-01-01T00:01:00Z","state":{"run_id":"01930000-0000-7000-8000-000000000001","job":{"at":"2024-01-01T00:00:05.250000Z","value":["spark","app.execute_insert"]},"first_event_at":"2024-01-01T00:00:00Z","last_event_at":"2024-01-01T00:00:05.250000Z","started_at":"2024-01-01T00:00:00Z","terminal":{"event_type":"FAIL","at":"2024-01-01T00:00:05.250000Z","error_message":"boom"},"abandoned":false,"abandoned_at":null,"parent":{"at":"2024-01-01T00:00:00Z","value":{"run_id":"01930000-0000-7000-8000-000000000002","job_namespace":"spark","job_name":"app"}},"job_type":{"at":"2024-01-01T00:00:00Z","value":"SQL_JOB"},"integration":{"at":"2024-01-01T00:00:00Z","value":"SPARK"},"processing_type":{"at":"2024-01-01T00:00:00Z","value":"BATCH"},"engine_version":null,"adapter_version":null,"producer":{"at":"2024-01-01T00:00:05.250000Z","value":"https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/spark"},"nominal_start":null,"inputs":[{"namespace":"hdfs://nn","name":"/data/a"}],"outputs":[{"namespace":"hdfs://nn","name":"/data/b"}]}}'


def event_of_the_run(kind: str, **details: Any) -> dict[str, Any]:
    run_id, job = "01930000-0000-7000-8000-000000000001", ("spark", "app.execute_insert")
    return run_event(kind, run_id=run_id, job=job, **details)


EVENTS = [
    event_of_the_run(
        "START",
        at="2024-01-01T00:00:00Z",
        inputs=[dataset("hdfs://nn", "/data/a")],
        parent=("01930000-0000-7000-8000-000000000002", "spark", "app"),
        job_type="SQL_JOB",
        processing_type="BATCH",
    ),
    event_of_the_run(
        "FAIL",
        at="2024-01-01T00:00:05.25Z",
        outputs=[dataset("hdfs://nn", "/data/b")],
        error_message="boom",
    ),
]


def test_a_run_stored_by_an_earlier_release_loads_and_is_written_back_the_same() -> None:
    state: RunState | None = None
    for document in EVENTS:
        event = parsed(document)
        assert isinstance(event, RunEvent)
        state = fold(state, event)
    assert state is not None
    expected = StoredRun(partition=4, seen_at=datetime(2024, 1, 1, 0, 1, tzinfo=UTC), state=state)

    assert StoredRun.decode(PYDANTIC_STORED_RUN) == expected
    assert expected.encode() == PYDANTIC_STORED_RUN
