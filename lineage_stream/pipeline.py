"""One micro-batch in two stages: `prepare` (parse, fold runs, build rows) and `finish` (write
the graph, dead-letter the bad); a batch is prepared while the one before it is finished.

Free of Faust: the run table is any mutable mapping of runId -> stored run, and the dead-letter
sink and Neo4j writer are passed in. `app.py` feeds it Faust events and acks them afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import msgspec
from neo4j.exceptions import Neo4jError

from lineage_stream import metrics
from lineage_stream.errors import RejectedEvent, RejectReason
from lineage_stream.neo4j_writer import Neo4jWriter, PreparedWrite
from lineage_stream.openlineage import Event, RunEvent, parse
from lineage_stream.pairing import RunState, fold

log = logging.getLogger(__name__)

# Finished runs stay in the table this long after their last event arrived, so late duplicates
# fold locally; after that the graph's own join keeps them correct.
FINISHED_RUN_GRACE = timedelta(minutes=10)
# A sweep after a long outage can abandon thousands of runs; a log line names the first ones.
MAX_LOGGED_RUN_IDS = 100


class StoredRun(msgspec.Struct, frozen=True, gc=False):
    """A run summary as kept in the pairing table, with the partition that owns it."""

    partition: int
    seen_at: datetime
    state: RunState

    def encode(self) -> bytes:
        return msgspec.json.encode(self)

    @staticmethod
    def decode(raw: bytes) -> StoredRun:
        return _STORED_RUN.decode(raw)


_STORED_RUN = msgspec.json.Decoder(StoredRun)

# `partition` is StoredRun's first field, so its JSON starts with it.
_PARTITION_PREFIX = re.compile(rb'\{"partition":(\d+),')


def stored_partition(raw: bytes) -> int:
    """The partition of a stored run, read from its JSON's first bytes without validating it.

    The sweep asks this of every run in the table; validating those of partitions it does not
    sweep would double its cost.
    """
    found = _PARTITION_PREFIX.match(raw)
    return int(found[1]) if found else StoredRun.decode(raw).partition


@dataclass(frozen=True, slots=True)
class Message:
    value: bytes | None
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Rejection:
    message: Message
    error: RejectedEvent


DeadLetter = Callable[[Rejection], Awaitable[None]]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PreparedBatch:
    size: int
    accepted: list[tuple[Message, Event]]
    rejected: list[Rejection]
    runs: dict[str, RunState]
    write: PreparedWrite


@dataclass
class BatchOutcome:
    accepted: list[Event]
    rejected: list[Rejection]
    runs: dict[str, RunState]


class Pipeline:
    def __init__(
        self,
        *,
        runs: MutableMapping[bytes, bytes],
        writer: Neo4jWriter,
        dead_letter: DeadLetter,
        max_event_bytes: int,
        run_timeout: timedelta,
        clock: Clock = utc_now,
        in_event_context: Callable[[object], None] = lambda _: None,
    ) -> None:
        self._runs = runs
        self._writer = writer
        self._dead_letter = dead_letter
        self._max_event_bytes = max_event_bytes
        self._run_timeout = run_timeout
        self._clock = clock
        self._in_event_context = in_event_context

    async def prepare(self, messages: list[tuple[Message, object]]) -> PreparedBatch:
        """Parse, fold the runs into the table and build the graph rows, writing nothing yet.

        Runs while Neo4j writes the batch before (`finish` them in order): parsing and row
        building happen in a worker thread, so the event loop keeps that write going.
        """
        now = self._clock()
        parsed = await asyncio.to_thread(self._parse_all, messages, now)
        accepted: list[tuple[Message, Event]] = []
        rejected: list[Rejection] = []
        touched: dict[str, StoredRun] = {}
        # The event context of each touched run's latest event: a table write goes to its
        # partition.
        contexts: dict[str, object] = {}
        for (message, context), event in zip(messages, parsed, strict=True):
            if isinstance(event, RejectedEvent):
                rejected.append(Rejection(message, event))
                continue
            accepted.append((message, event))
            if isinstance(event, RunEvent):
                run_id = str(event.run.run_id)
                previous = touched.get(run_id) or self._load(run_id)
                state = fold(previous.state if previous else None, event)
                metrics.record_fold(message.partition, previous.state if previous else None, state)
                touched[run_id] = StoredRun(partition=message.partition, seen_at=now, state=state)
                contexts[run_id] = context
        # Once per run, not per event: each table write is a changelog message.
        for run_id, stored in touched.items():
            self._in_event_context(contexts[run_id])
            self._runs[run_id.encode()] = stored.encode()
        runs = {run_id: stored.state for run_id, stored in touched.items()}
        write = await self._writer.prepare([event for _, event in accepted], list(runs.values()))
        return PreparedBatch(len(messages), accepted, rejected, runs, write)

    async def refresh(self, prepared: PreparedBatch) -> PreparedBatch:
        """Prepare the graph rows again if a batch they counted on was refused since."""
        return replace(prepared, write=await self._writer.refresh(prepared.write))

    async def finish(self, prepared: PreparedBatch) -> BatchOutcome:
        """Write a prepared batch to the graph and its rejects to the DLQ; when this returns,
        every message of the batch is in the graph or the DLQ."""
        accepted, rejected, runs = prepared.accepted, list(prepared.rejected), prepared.runs
        try:
            await self._writer.commit(prepared.write)
        except Neo4jError as exc:
            log.error(
                "Neo4j rejected a batch (%s); writing its events one by one",
                exc.message,
                extra={"reason": exc.code, "events": len(accepted)},
            )
            refused = await self._write_one_by_one(accepted, runs)
            rejected += refused
            accepted = [pair for pair in accepted if pair[0] not in {r.message for r in refused}]
        for rejection in rejected:
            source = rejection.message
            log.warning(
                "dead-lettered %s[%d]@%d: %s",
                source.topic,
                source.partition,
                source.offset,
                rejection.error,
                extra={
                    "topic": source.topic,
                    "partition": source.partition,
                    "offset": source.offset,
                    "reason": rejection.error.reason.value,
                },
            )
            await self._dead_letter(rejection)
        metrics.record_batch(
            prepared.size, [event for _, event in accepted], [r.error.reason for r in rejected]
        )
        return BatchOutcome([event for _, event in accepted], rejected, runs)

    def _parse_all(
        self, messages: list[tuple[Message, object]], now: datetime
    ) -> list[Event | RejectedEvent]:
        parsed: list[Event | RejectedEvent] = []
        for message, _ in messages:
            try:
                parsed.append(parse(message.value or b"", max_bytes=self._max_event_bytes, now=now))
            except RejectedEvent as error:
                parsed.append(error)
        return parsed

    async def _write_one_by_one(
        self, accepted: list[tuple[Message, Event]], runs: dict[str, RunState]
    ) -> list[Rejection]:
        """Find the events Neo4j refuses (a value it cannot index, say) so only they are lost."""
        refusals = await self._writer.write_each(
            [
                ([event], [runs[str(event.run.run_id)]] if isinstance(event, RunEvent) else [])
                for _, event in accepted
            ]
        )
        return [
            Rejection(
                message,
                RejectedEvent(
                    RejectReason.INVALID_EVENT, f"Neo4j refused the event: {exc.message}"
                ),
            )
            for (message, _), exc in zip(accepted, refusals, strict=True)
            if exc is not None
        ]

    def _load(self, run_id: str) -> StoredRun | None:
        raw = self._runs.get(run_id.encode())
        return None if raw is None else StoredRun.decode(raw)

    async def sweep(self, ticks: Mapping[int, object]) -> list[RunState]:
        """Abandon stale open runs of the ticked partitions and forget finished ones; returns
        the abandoned. `ticks` maps each partition to its tick, the event context its table
        changes need.

        One pass over the table for all of them, streamed: the table holds every assigned
        partition's runs, a million or more when runs are left open.
        """
        now = self._clock()
        abandoned: dict[int, list[RunState]] = {partition: [] for partition in ticks}
        forget: dict[int, list[bytes]] = {partition: [] for partition in ticks}
        open_runs = dict.fromkeys(ticks, 0)
        for run_id, raw in self._runs.items():
            partition = stored_partition(raw)
            if partition not in ticks:
                continue
            stored = StoredRun.decode(raw)
            if stored.state.is_stale(now, self._run_timeout):
                abandoned[partition].append(stored.state.abandon(self._run_timeout))
                forget[partition].append(run_id)
            elif stored.state.terminal is not None and stored.seen_at < now - FINISHED_RUN_GRACE:
                forget[partition].append(run_id)
            else:
                open_runs[partition] += stored.state.terminal is None
        every_abandoned = [run for runs in abandoned.values() for run in runs]
        if every_abandoned:
            await self._writer.write([], every_abandoned)
            log.info(
                "abandoned %d runs of partitions %s",
                len(every_abandoned),
                sorted(ticks),
                extra={
                    "partitions": sorted(ticks),
                    "abandoned": len(every_abandoned),
                    "runIds": [run.run_id for run in every_abandoned[:MAX_LOGGED_RUN_IDS]],
                },
            )
        for partition, context in ticks.items():
            self._in_event_context(context)
            for run_id in forget[partition]:
                del self._runs[run_id]
            metrics.record_sweep(partition, open_runs[partition], len(abandoned[partition]))
        return every_abandoned
