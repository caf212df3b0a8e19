"""Backfill: newline-delimited OpenLineage events into the graph, without Kafka.

The same path as the worker's: `parse`, the pairing `fold`, and `Neo4jWriter` (which builds the
graph rows). Each batch writes its events with the current summary of every run they touch; the
graph's own join makes the summaries written by earlier batches agree with the later ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from neo4j import AsyncGraphDatabase
from neo4j.exceptions import Neo4jError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from lineage_stream.errors import RejectedEvent, RejectReason
from lineage_stream.neo4j_writer import Neo4jWriter
from lineage_stream.openlineage import Event, RunEvent, parse
from lineage_stream.pairing import RunState, fold
from lineage_stream.runtime import tune_garbage_collection
from lineage_stream.schema import ensure_schema
from lineage_stream.settings import Settings


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    raw: bytes


@dataclass(frozen=True, slots=True)
class InvalidLine:
    number: int
    reason: RejectReason
    detail: str


@dataclass
class ReplayReport:
    events: int = 0
    runs: set[str] = field(default_factory=set)
    invalid: list[InvalidLine] = field(default_factory=list)


def numbered_lines(source: BinaryIO) -> Iterator[Line]:
    """Non-blank lines with their 1-based line numbers."""
    for number, raw in enumerate(source, start=1):
        if raw.strip():
            yield Line(number, raw.rstrip(b"\r\n"))


def _batches(lines: Iterable[Line], size: int) -> Iterator[list[Line]]:
    batch: list[Line] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Replay:
    def __init__(
        self,
        writer: Neo4jWriter,
        *,
        batch_size: int,
        max_event_bytes: int,
        on_invalid: Callable[[InvalidLine], None] = lambda _: None,
        on_line: Callable[[Line], None] = lambda _: None,
    ) -> None:
        self._writer = writer
        self._batch_size = batch_size
        self._max_event_bytes = max_event_bytes
        self._on_invalid = on_invalid
        self._on_line = on_line
        self._runs: dict[str, RunState] = {}
        self.report = ReplayReport()

    async def run(self, lines: Iterable[Line]) -> ReplayReport:
        for batch in _batches(lines, self._batch_size):
            await self._replay_batch(batch)
        return self.report

    async def _replay_batch(self, batch: list[Line]) -> None:
        now = datetime.now(UTC)
        accepted: list[tuple[Line, Event]] = []
        touched: set[str] = set()
        for line in batch:
            self._on_line(line)
            try:
                event = parse(line.raw, max_bytes=self._max_event_bytes, now=now)
            except RejectedEvent as error:
                self._invalid(InvalidLine(line.number, error.reason, error.detail))
                continue
            accepted.append((line, event))
            if isinstance(event, RunEvent):
                run_id = str(event.run.run_id)
                self._runs[run_id] = fold(self._runs.get(run_id), event)
                touched.add(run_id)
        try:
            await self._writer.write(
                [event for _, event in accepted], [self._runs[run] for run in sorted(touched)]
            )
        except Neo4jError:
            accepted = await self._write_one_by_one(accepted)
        self.report.events += len(accepted)
        self.report.runs.update(
            str(event.run.run_id) for _, event in accepted if isinstance(event, RunEvent)
        )

    async def _write_one_by_one(
        self, accepted: list[tuple[Line, Event]]
    ) -> list[tuple[Line, Event]]:
        """Find the events Neo4j refuses (a value it cannot index, say) so only they are lost."""
        refusals = await self._writer.write_each(
            [
                (
                    [event],
                    [self._runs[str(event.run.run_id)]] if isinstance(event, RunEvent) else [],
                )
                for _, event in accepted
            ]
        )
        written = []
        for (line, event), exc in zip(accepted, refusals, strict=True):
            if exc is None:
                written.append((line, event))
                continue
            detail = f"Neo4j refused the event: {exc.message}"
            self._invalid(InvalidLine(line.number, RejectReason.INVALID_EVENT, detail))
        return written

    def _invalid(self, invalid: InvalidLine) -> None:
        self.report.invalid.append(invalid)
        self._on_invalid(invalid)


def replay_file(settings: Settings, path: Path, console: Console) -> ReplayReport:
    """Replay a file (or stdin for `-`) with a progress bar; invalid lines go to the console."""
    ensure_schema(settings)

    def report_invalid(invalid: InvalidLine) -> None:
        console.print(
            f"line {invalid.number}: {invalid.reason.value}: {invalid.detail}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )

    async def replay_all(source: BinaryIO, progress: Progress, task: TaskID) -> ReplayReport:
        driver = AsyncGraphDatabase.driver(
            settings.neo4j_uri,
            auth=(settings.neo4j_user, settings.neo4j_password.get_secret_value()),
            notifications_min_severity="OFF",
        )
        try:
            replay = Replay(
                Neo4jWriter(
                    driver,
                    settings.neo4j_database,
                    written_columns_capacity=settings.written_columns_cache,
                ),
                batch_size=settings.batch_size,
                max_event_bytes=settings.max_event_bytes,
                on_invalid=report_invalid,
                on_line=lambda line: progress.advance(task, len(line.raw) + 1),
            )
            return await replay.run(numbered_lines(source))
        finally:
            await driver.close()

    stdin = str(path) == "-"
    total = None if stdin else path.stat().st_size
    with (
        contextlib.nullcontext(sys.stdin.buffer) if stdin else path.open("rb") as source,
        Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress,
    ):
        task = progress.add_task(f"replaying {'stdin' if stdin else path.name}", total=total)
        tune_garbage_collection()
        return asyncio.run(replay_all(source, progress, task))
