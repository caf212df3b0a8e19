"""Run pairing: fold the events of one run into a small lifecycle summary.

`merge` is a join: commutative, associative and idempotent. `fold(state, event)` is
`merge(state, summarize(event))`, so any order or duplication of a run's events gives the same
summary. The Neo4j writer applies the same rules when it upserts a Process, so the graph agrees
with this module even when two summaries of one run are written separately.

Rules (from real producers):
- FAIL and ABORT outrank COMPLETE; among terminal events of the same rank the earliest decides;
  the deciding event fixes state, endedAt and errorMessage. A terminal run never goes back to
  RUNNING.
- startedAt is the earliest START's eventTime; without a START it is unknown.
- every other attribute takes the value from the latest event that carries it.
- a run with no terminal event, quiet for longer than the timeout, is ABANDONED (never a
  STREAMING job); any later event revives or completes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Generic, TypeVar, overload

import msgspec

from lineage_stream.naming import DatasetKey
from lineage_stream.openlineage import (
    EventType,
    ParentRef,
    RunEvent,
    adapter_version_of,
    engine_version_of,
    error_message_of,
    job_type_of,
    nominal_start_of,
    parent_of,
)

T = TypeVar("T")


class RunStateName(StrEnum):
    RUNNING = "RUNNING"
    COMPLETE = "COMPLETE"
    FAIL = "FAIL"
    ABORT = "ABORT"
    ABANDONED = "ABANDONED"


TERMINAL_RANK = {EventType.COMPLETE: 1, EventType.FAIL: 2, EventType.ABORT: 2}


# msgspec structs, not pydantic models: a run is summarised, merged, stored and loaded for every
# event, on the event loop, and with pydantic models that took a sixth of the worker's busy
# time (docs/performance.md, levers). The JSON is the same, so a pairing table stored by a
# pydantic release loads unchanged (tests/unit/test_stored_run.py).
class Latest(msgspec.Struct, Generic[T], frozen=True, gc=False):
    """A value with the eventTime of the event that carried it."""

    at: datetime
    value: T


class Terminal(msgspec.Struct, frozen=True, gc=False):
    event_type: EventType
    at: datetime
    error_message: str | None = None

    def decides_over(self, other: Terminal) -> bool:
        mine, theirs = TERMINAL_RANK[self.event_type], TERMINAL_RANK[other.event_type]
        if mine != theirs:
            return mine > theirs
        return _order_key(self) < _order_key(other)


def _order_key(terminal: Terminal) -> tuple[datetime, str, str]:
    return terminal.at, terminal.event_type.value, terminal.error_message or ""


class RunState(msgspec.Struct, frozen=True, gc=False):
    run_id: str
    job: Latest[tuple[str, str]]
    first_event_at: datetime
    last_event_at: datetime
    started_at: datetime | None = None
    terminal: Terminal | None = None
    abandoned: bool = False
    abandoned_at: datetime | None = None
    """When it became abandoned: its last event plus the run timeout then in force."""
    parent: Latest[ParentRef] | None = None
    job_type: Latest[str] | None = None
    integration: Latest[str] | None = None
    processing_type: Latest[str] | None = None
    engine_version: Latest[str] | None = None
    adapter_version: Latest[str] | None = None
    producer: Latest[str] | None = None
    nominal_start: Latest[datetime] | None = None
    inputs: frozenset[DatasetKey] = frozenset()
    outputs: frozenset[DatasetKey] = frozenset()

    @property
    def state(self) -> RunStateName:
        if self.terminal is not None:
            return RunStateName(self.terminal.event_type.value)
        return RunStateName.ABANDONED if self.abandoned else RunStateName.RUNNING

    @property
    def ended_at(self) -> datetime | None:
        return self.terminal.at if self.terminal else None

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.terminal is None:
            return None
        return round((self.terminal.at - self.started_at).total_seconds() * 1000)

    @property
    def error_message(self) -> str | None:
        return self.terminal.error_message if self.terminal else None

    @property
    def parent_run_id(self) -> str | None:
        """The parent run, unless the run names itself (seen in real Spark RDD events)."""
        if self.parent is None:
            return None
        parent_id = str(self.parent.value.run_id)
        return None if parent_id == self.run_id else parent_id

    def is_stale(self, now: datetime, timeout: timedelta) -> bool:
        """No terminal event and quiet for longer than the timeout; streaming jobs never are."""
        if self.terminal is not None:
            return False
        if self.processing_type and self.processing_type.value.upper() == "STREAMING":
            return False
        return self.last_event_at < now - timeout

    def abandon(self, timeout: timedelta) -> RunState:
        """Abandoned, as `is_stale` with this timeout found it: at its last event plus it."""
        return msgspec.structs.replace(
            self, abandoned=True, abandoned_at=self.last_event_at + timeout
        )


@overload
def _later(a: Latest[T], b: Latest[T]) -> Latest[T]: ...


@overload
def _later(a: Latest[T] | None, b: Latest[T] | None) -> Latest[T] | None: ...


def _later(a: Latest[T] | None, b: Latest[T] | None) -> Latest[T] | None:
    if a is None:
        return b
    if b is None:
        return a
    if a.at != b.at:
        return a if a.at > b.at else b
    # Equal times with different values: pick deterministically so order never matters.
    return a if repr(a.value) >= repr(b.value) else b


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _deciding(a: Terminal | None, b: Terminal | None) -> Terminal | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a.decides_over(b) or a == b else b


def merge(a: RunState, b: RunState) -> RunState:
    """Join two summaries of the same run."""
    if a.run_id != b.run_id:
        raise ValueError(f"cannot merge runs {a.run_id} and {b.run_id}")
    last_event_at = max(a.last_event_at, b.last_event_at)
    # Abandonment holds only while no later event has shown the run is alive.
    still_abandoned = [
        run for run in (a, b) if run.abandoned and run.last_event_at == last_event_at
    ]
    abandoned_at = [run.abandoned_at for run in still_abandoned if run.abandoned_at is not None]
    return RunState(
        run_id=a.run_id,
        job=_later(a.job, b.job),
        first_event_at=min(a.first_event_at, b.first_event_at),
        last_event_at=last_event_at,
        started_at=_earlier(a.started_at, b.started_at),
        terminal=_deciding(a.terminal, b.terminal),
        abandoned=bool(still_abandoned),
        abandoned_at=max(abandoned_at, default=None),
        parent=_later(a.parent, b.parent),
        job_type=_later(a.job_type, b.job_type),
        integration=_later(a.integration, b.integration),
        processing_type=_later(a.processing_type, b.processing_type),
        engine_version=_later(a.engine_version, b.engine_version),
        adapter_version=_later(a.adapter_version, b.adapter_version),
        producer=_later(a.producer, b.producer),
        nominal_start=_later(a.nominal_start, b.nominal_start),
        inputs=a.inputs | b.inputs,
        outputs=a.outputs | b.outputs,
    )


def _latest(at: datetime, value: T | None) -> Latest[T] | None:
    return None if value is None else Latest(at=at, value=value)


def summarize(event: RunEvent) -> RunState:
    """The summary of a run that has seen only this event."""
    at = event.event_time
    job_type = job_type_of(event.job)
    terminal = None
    if event.event_type in TERMINAL_RANK:
        terminal = Terminal(
            event_type=event.event_type, at=at, error_message=error_message_of(event.run)
        )
    parent: ParentRef | None = parent_of(event.run)
    return RunState(
        run_id=str(event.run.run_id),
        job=Latest(at=at, value=(event.job.namespace, event.job.name)),
        first_event_at=at,
        last_event_at=at,
        started_at=at if event.event_type is EventType.START else None,
        terminal=terminal,
        parent=_latest(at, parent),
        job_type=_latest(at, job_type.job_type if job_type else None),
        integration=_latest(at, job_type.integration if job_type else None),
        processing_type=_latest(at, job_type.processing_type if job_type else None),
        engine_version=_latest(at, engine_version_of(event.run)),
        adapter_version=_latest(at, adapter_version_of(event.run)),
        producer=_latest(at, event.producer or None),
        nominal_start=_latest(at, nominal_start_of(event.run)),
        inputs=frozenset(dataset.identity.key for dataset in event.inputs),
        outputs=frozenset(dataset.identity.key for dataset in event.outputs),
    )


def fold(state: RunState | None, event: RunEvent) -> RunState:
    summary = summarize(event)
    return summary if state is None else merge(state, summary)


_STATE_DECODER = msgspec.json.Decoder(RunState)


def encode_state(state: RunState) -> bytes:
    return msgspec.json.encode(state)


def decode_state(raw: bytes) -> RunState:
    return _STATE_DECODER.decode(raw)
