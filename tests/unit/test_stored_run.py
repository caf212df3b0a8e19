"""Reading a stored run's partition from its first bytes agrees with validating it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lineage_stream.openlineage import RunEvent
from lineage_stream.pairing import summarize
from lineage_stream.pipeline import StoredRun, stored_partition
from tests.builders import parsed, run_event

pytestmark = pytest.mark.unit


def state_of(kind: str) -> StoredRun:
    event = parsed(run_event(kind, run_id=str(uuid.uuid4()), job=("ns", "job")))
    assert isinstance(event, RunEvent)
    return StoredRun(partition=0, seen_at=datetime.now(UTC), state=summarize(event))


@given(st.integers(min_value=0, max_value=1_000_000), st.sampled_from(["START", "COMPLETE"]))
def test_the_prefix_names_the_partition_the_model_holds(partition: int, kind: str) -> None:
    stored = state_of(kind).model_copy(update={"partition": partition})
    raw = stored.model_dump_json().encode()

    assert stored_partition(raw) == partition == StoredRun.model_validate_json(raw).partition


def test_json_in_another_key_order_is_validated_instead() -> None:
    document = orjson.loads(state_of("START").model_dump_json())
    reordered = {"seen_at": document["seen_at"], "state": document["state"], "partition": 7}

    assert stored_partition(orjson.dumps(reordered)) == 7
