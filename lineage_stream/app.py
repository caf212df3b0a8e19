"""Faust wiring: topics, the pairing table, the ingest agent and the sweep ticker.

The agent takes micro-batches, hands them to `Pipeline`, and commits their offsets itself once
the graph write returned and the producer (pairing changelog, dead letters) is flushed, so no
offset is committed ahead of Neo4j. The tick topic has as many partitions as the source topic,
so Faust assigns tick partition p with source partition p; a tick gives the sweep of partition
p an event context, which is what lets it change the table.
"""

from __future__ import annotations

import asyncio
import math
import os
import ssl
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, NoReturn, TypeVar

import faust
from confluent_kafka import Consumer, KafkaException, TopicPartition
from faust.types import TP
from mode.utils.logging import get_logger
from neo4j import AsyncGraphDatabase

from lineage_stream.dlq import DeadLetterSink
from lineage_stream.kafka_admin import by_run_topic_name, client_config, tick_topic_name
from lineage_stream.logs import logging_config
from lineage_stream.neo4j_writer import Neo4jWriter
from lineage_stream.offsets import OffsetLedger, Progress
from lineage_stream.openlineage import peek_run_id
from lineage_stream.operations import add_operations
from lineage_stream.pipeline import Message, Pipeline, PreparedBatch
from lineage_stream.runtime import tune_garbage_collection
from lineage_stream.settings import Settings

log = get_logger(__name__)

RUN_TABLE = "runs"
MAX_REQUEST_BYTES = 32 * 1024 * 1024
# The pairing table's changelog gets a message per run a batch touches, hundreds at once.
# aiokafka's default 16 KiB batches hold about ten stored runs, and a full batch makes the next
# send wait for the broker; meanwhile Faust's producer buffer (100 messages by default) filled
# and Faust stopped handing events to the agent until it drained ("producer buffer full"):
# stalls of up to a second. 512 KiB stays below the 1 MB a default broker accepts.
PRODUCER_BATCH_BYTES = 512 * 1024
CHANGELOG_BUFFER_BATCHES = 4
EXIT_SOFTWARE = 70  # sysexits.h: internal software error
REREAD_INTERVAL_S = 5.0
_Answer = TypeVar("_Answer")


def _credentials(settings: Settings) -> Any:
    context = None
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
        if settings.kafka_ssl_certfile:
            context.load_cert_chain(
                str(settings.kafka_ssl_certfile),
                str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
            )
    if settings.kafka_sasl_mechanism:
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


class OffsetCommitter:
    """Commits, per partition, the offset after the contiguous events the graph now holds.

    The ingest topics run without Faust acks: after a killed worker's partitions were handed
    back, Faust's ack bookkeeping could stop advancing a committed offset for good (cf.
    faust-streaming #606), and it can deliver a partition with a hole (see `offsets`). Holes
    are read again, or stepped over when the broker holds nothing there.
    """

    def __init__(self, app: faust.App, kafka_config: dict[str, Any]) -> None:
        self._app = app
        self._kafka = {
            **kafka_config,
            "group.id": app.conf.id,
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted",
        }
        self._ledger: OffsetLedger[TP] = OffsetLedger()
        self._reread_at: dict[TP, float] = {}

    def forget(self, partitions: Iterable[TP]) -> None:
        self._ledger.forget(partitions)

    def committed_offset(self, tp: TP) -> int | None:
        """The group's offset for a partition as this worker last committed or read it."""
        known = self._ledger.committed_offset(tp)
        if known is not None:
            return known
        # Not handled yet since assignment: what Faust read when it sought there (0 as None).
        consumer: Any = self._app.consumer
        seen: int | None = consumer._committed_offset.get(tp)
        return seen

    async def commit(self, events: Iterable[Any]) -> None:
        handled: dict[TP, list[int]] = defaultdict(list)
        for event in events:
            handled[event.message.tp].append(event.message.offset)
        assigned = self._app.consumer.assignment()
        # Partitions first handled since assignment: one broker question for all of them.
        unknown = [tp for tp in handled if tp in assigned and not self._ledger.knows(tp)]
        if unknown:
            for tp, position in (await self._ask_broker(self._positions, unknown)).items():
                self._ledger.start(tp, position)
        offsets: dict[TP, int] = {}
        for tp, tp_offsets in handled.items():
            if tp not in assigned:
                continue  # its new owner re-reads from the last commit
            if not self._ledger.knows(tp):  # forgotten by a rebalance while we asked
                self._ledger.start(tp, (await self._ask_broker(self._positions, [tp]))[tp])
            progress = self._ledger.handled(tp, tp_offsets)
            if progress.hole_at is not None:
                progress = await self._mend(tp, progress, tp_offsets)
            if progress.commit is not None:
                offsets[tp] = progress.commit
        if not offsets:
            return
        await self._app.producer.flush()
        # The transport's raw commit: Faust's public one commits acked offsets only.
        consumer: Any = self._app.consumer
        committed = await consumer._commit(offsets)
        for tp, offset in offsets.items():
            context = {"topic": tp.topic, "partition": tp.partition, "offset": offset}
            if committed:
                self._ledger.committed(tp, offset)
                log.debug("committed %s up to %d", tp, offset, extra=context)
            else:
                # The next batch commits again, from the same ledger.
                log.info("commit of %s up to %d failed", tp, offset, extra=context)

    async def _mend(self, tp: TP, progress: Progress, handled: list[int]) -> Progress:
        while progress.hole_at is not None:
            first = await self._ask_broker(self._first_offset_from, tp, progress.hole_at)
            if not self._ledger.knows(tp):
                return Progress()  # revoked while we asked; its next owner starts afresh
            if first <= progress.hole_at:
                break
            log.info(
                "%s: the broker holds nothing from %d to %d; stepping over",
                tp,
                progress.hole_at,
                first,
                extra={"topic": tp.topic, "partition": tp.partition, "offset": progress.hole_at},
            )
            self._ledger.step_over(tp, first)
            progress = self._ledger.handled(tp, handled)
        now, hole_at = time.monotonic(), progress.hole_at
        # Events already buffered behind the hole show it again: seek once per interval.
        due = now - self._reread_at.get(tp, -math.inf) >= REREAD_INTERVAL_S
        if hole_at is not None and due:
            log.warning(
                "%s: offsets from %d were skipped; reading them again",
                tp,
                hole_at,
                extra={"topic": tp.topic, "partition": tp.partition, "offset": hole_at},
            )
            await self._app.consumer.seek(tp, hole_at)
            self._reread_at[tp] = now
        return progress

    async def _ask_broker(self, question: Callable[..., _Answer], *args: Any) -> _Answer:
        """Ask until the broker answers: without it no offset can be committed anyway."""
        backoff = 0.5
        while True:
            try:
                return await asyncio.to_thread(question, *args)
            except KafkaException as exc:
                log.warning(
                    "Kafka did not answer (%s); asking again in %.1f s",
                    exc,
                    backoff,
                    extra={"reason": exc.args[0].name() if exc.args else "unknown"},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    def _positions(self, tps: list[TP]) -> dict[TP, int]:
        """Each partition's committed offset for the group, or its log start if it has none."""
        consumer = Consumer(self._kafka)
        try:
            committed = consumer.committed(
                [TopicPartition(tp.topic, tp.partition) for tp in tps], 30
            )
            positions = {}
            for tp, found in zip(tps, committed, strict=True):
                if found.offset >= 0:
                    positions[tp] = int(found.offset)
                else:
                    low, _ = consumer.get_watermark_offsets(
                        TopicPartition(tp.topic, tp.partition), 30
                    )
                    positions[tp] = int(low)
            return positions
        finally:
            consumer.close()

    def _first_offset_from(self, tp: TP, offset: int) -> int:
        """The first offset the broker holds at or after `offset` (itself if it cannot tell)."""
        consumer = Consumer(self._kafka)
        try:
            low, _ = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), 30)
            if low > offset:
                return int(low)
            consumer.assign([TopicPartition(tp.topic, tp.partition, offset)])
            message = consumer.poll(10)
            found = None if message is None or message.error() else message.offset()
            return offset if found is None else found
        finally:
            consumer.close()


MIB = 2**20
# Per partition. Faust's defaults (three 64 MiB write buffers, a 2 GiB block cache) let the
# worker's memory grow with the runs it holds: 1.2 GiB RSS at 644,000 open runs, 6 partitions.
# A run is small and read back soon after it is written, so small buffers serve it as well.
ROCKSDB_OPTIONS: dict[str, int] = {
    "write_buffer_size": 4 * MIB,
    "max_write_buffer_number": 2,
    "block_cache_size": 8 * MIB,
    "block_cache_compressed_size": 2 * MIB,
}


def create_app(settings: Settings, partitions: int) -> faust.App:
    app = faust.App(
        settings.consumer_group,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        broker_credentials=_credentials(settings),
        store="rocksdb://" if settings.store == "rocksdb" else "memory://",
        datadir=str(settings.data_dir),
        topic_partitions=partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        producer_max_request_size=MAX_REQUEST_BYTES,
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        web_enabled=settings.web_port is not None,
        web_port=settings.web_port or 6066,
        web_host="127.0.0.1",
        stream_buffer_maxsize=max(4096, settings.batch_size * 2),
        broker_commit_interval=1.0,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_s / 3),
    )
    app.producer.buffer.max_messages = CHANGELOG_BUFFER_BATCHES * settings.batch_size
    # bytes keys and values select Faust's raw codec: what the changelog restores is what
    # was stored.
    runs = app.Table(
        RUN_TABLE,
        default=None,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        options=dict(ROCKSDB_OPTIONS),  # a copy: Faust pops keys from it
    )
    raw: dict[str, Any] = {
        "acks": False,
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    ticks = tick_topic_name(settings)
    committer = OffsetCommitter(app, client_config(settings))
    if settings.repartition_by_run:
        by_run = app.topic(by_run_topic_name(settings), **raw)

        @app.agent(app.topic(settings.topic, **raw))
        async def repartition(stream: Any) -> None:
            async for events in stream.noack_take(
                settings.batch_size, within=settings.batch_timeout_ms / 1000
            ):
                sent = [
                    await by_run.send(key=peek_run_id(event.value), value=event.value, force=True)
                    for event in events
                ]
                await asyncio.gather(*sent)
                await committer.commit(events)
                for event in events:
                    await stream.ack(event)

        source = app.topic(by_run_topic_name(settings), ticks, **raw)
    else:
        source = app.topic(settings.topic, ticks, **raw)
    driver = AsyncGraphDatabase.driver(
        settings.neo4j_uri,
        auth=(settings.neo4j_user, settings.neo4j_password.get_secret_value()),
        notifications_min_severity="OFF",
    )
    writer = Neo4jWriter(
        driver,
        settings.neo4j_database,
        written_columns_capacity=settings.written_columns_cache,
    )
    add_operations(app, settings, driver, committer.committed_offset)
    dead_letters = DeadLetterSink(app, settings.dlq_topic)

    def set_current_event(event: Any) -> None:
        # Faust routes a table write to the partition of the "current event"; a batch holds
        # events of several partitions, so each write names its own.
        faust.streams._current_event.set(weakref.ref(event))

    pipeline = Pipeline(
        runs=runs,
        writer=writer,
        dead_letter=dead_letters.send,
        max_event_bytes=settings.max_event_bytes,
        run_timeout=timedelta(seconds=settings.run_timeout_s),
        in_event_context=set_current_event,
    )

    @app.agent(source)
    async def ingest(stream: Any) -> None:
        # Batch N+1 is prepared while batch N is written, committed and acked in `in_flight`.
        # A batch with sweep ticks is a barrier: a sweep reads and changes the run table,
        # which preparing the next batch changes too.
        in_flight: asyncio.Task[None] | None = None

        async def land(
            prepared: PreparedBatch | None, events: list[Any], ticked: list[Any]
        ) -> None:
            try:
                if prepared is not None:
                    await pipeline.finish(prepared)
                if ticked:
                    await pipeline.sweep({event.message.partition: event for event in ticked})
                await committer.commit(events)
            except Exception:
                _exit_on_failure()
            # With acks off an ack commits nothing; it tells Faust's shutdown and
            # rebalance waits that these events are done.
            for event in events:
                await stream.ack(event)

        try:
            async for events in stream.noack_take(
                settings.batch_size, within=settings.batch_timeout_ms / 1000
            ):
                batch, ticked = [], []
                for event in events:
                    message = event.message
                    if message.topic == ticks:
                        ticked.append(event)
                        continue
                    batch.append(
                        (
                            Message(event.value, message.topic, message.partition, message.offset),
                            event,
                        )
                    )
                try:
                    prepared = await pipeline.prepare(batch) if batch else None
                    if in_flight is not None:
                        await in_flight
                        in_flight = None
                    if prepared is not None:
                        prepared = await pipeline.refresh(prepared)
                except Exception:
                    _exit_on_failure()
                if ticked:
                    await land(prepared, events, ticked)
                else:
                    in_flight = asyncio.create_task(land(prepared, events, []))
        finally:
            # Stopping: what is in flight is not committed; the next owner reads it again.
            if in_flight is not None:
                in_flight.cancel()

    @app.task  # type: ignore[untyped-decorator]
    async def tick() -> None:
        while True:
            for partition in range(partitions):
                await app.producer.send_and_wait(ticks, None, b"", partition, None, None)
            await asyncio.sleep(settings.sweep_interval_s)

    @app.on_partitions_assigned.connect
    async def reread_positions(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Another member may have committed meanwhile: ask the broker again.
        assigned: set[TP] = args[0]
        committer.forget(assigned)

    @app.on_before_shutdown.connect
    async def close_driver(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await driver.close()

    return app


def _exit_on_failure() -> NoReturn:
    # Faust would restart the agent with the batch unacked and stall forever; exiting commits
    # nothing past it, and the restarted worker retries it.
    log.exception("unexpected failure while processing a batch; exiting")
    os._exit(EXIT_SOFTWARE)


def run_worker(settings: Settings, partitions: int) -> None:
    app = create_app(settings, partitions)
    tune_garbage_collection()
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        logging_config=logging_config(settings),
        quiet=True,
        redirect_stdouts=False,
    )
    # Faust's start-up spinner sets the root logger to DEBUG when the level is WARNING or above,
    # so every library's debug call builds a record; it also writes cursor codes into the logs.
    worker.spinner = None
    worker.execute_from_commandline()
