"""Preparing a batch folds each run's events and stores the run once, in its own partition."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import cast

import orjson
import pytest
from neo4j import AsyncDriver

from lineage_stream.neo4j_writer import Neo4jWriter
from lineage_stream.openlineage import RunEvent
from lineage_stream.pairing import RunState, fold
from lineage_stream.pipeline import Message, Pipeline, Rejection, StoredRun
from tests.builders import parsed, run_event

pytestmark = pytest.mark.unit


class RecordingTable(MutableMapping[bytes, bytes]):
    """A run table that records each write with the event context it was made in."""

    def __init__(self) -> None:
        self.stored: dict[bytes, bytes] = {}
        self.writes: list[tuple[bytes, object]] = []
        self.context: object = None

    def __getitem__(self, key: bytes) -> bytes:
        return self.stored[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes.append((key, self.context))
        self.stored[key] = value

    def __delitem__(self, key: bytes) -> None:
        del self.stored[key]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.stored)

    def __len__(self) -> int:
        return len(self.stored)


async def no_dead_letters(rejection: Rejection) -> None:
    raise AssertionError(f"nothing is dead-lettered while preparing: {rejection}")


def test_a_run_is_stored_once_per_batch_with_its_latest_events_context() -> None:
    table = RecordingTable()

    def in_event_context(context: object) -> None:
        table.context = context

    # Preparing events without datasets asks the graph nothing: no driver is needed.
    writer = Neo4jWriter(cast(AsyncDriver, None), "neo4j")
    pipeline = Pipeline(
        runs=table,
        writer=writer,
        dead_letter=no_dead_letters,
        max_event_bytes=1_000_000,
        run_timeout=timedelta(hours=1),
        in_event_context=in_event_context,
    )
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    sent = [
        (first, 0, "START", "2024-01-01T00:00:00Z"),
        (second, 1, "START", "2024-01-01T00:00:01Z"),
        (first, 0, "RUNNING", "2024-01-01T00:00:02Z"),
        (first, 0, "COMPLETE", "2024-01-01T00:00:03Z"),
    ]
    batch: list[tuple[Message, object]] = [
        (
            Message(
                orjson.dumps(run_event(kind, run_id=run_id, job=("ns", run_id), at=at)),
                "events",
                partition,
                offset,
            ),
            f"context of offset {offset}",
        )
        for offset, (run_id, partition, kind, at) in enumerate(sent)
    ]
    batch.append((Message(b"{not json", "events", 0, len(sent)), "context of the bad one"))

    prepared = asyncio.run(pipeline.prepare(batch))

    assert sorted(table.writes, key=lambda write: write[0]) == sorted(
        [(first.encode(), "context of offset 3"), (second.encode(), "context of offset 1")]
    )
    expected: dict[str, RunState | None] = {first: None, second: None}
    for run_id, _, kind, at in sent:
        event = parsed(run_event(kind, run_id=run_id, job=("ns", run_id), at=at))
        assert isinstance(event, RunEvent)
        expected[run_id] = fold(expected[run_id], event)
    for run_id, partition in ((first, 0), (second, 1)):
        stored = StoredRun.decode(table.stored[run_id.encode()])
        assert (stored.partition, stored.state) == (partition, expected[run_id])
        assert stored.seen_at <= datetime.now(UTC)
    assert prepared.runs == expected
    assert len(prepared.accepted) == len(sent)
    assert [r.message.offset for r in prepared.rejected] == [len(sent)]
