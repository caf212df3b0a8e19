"""Faust wiring: topics, the pairing table, the ingest agent and the sweep ticker.

The agent takes micro-batches without acking, hands them to `Pipeline`, and acks only after the
graph write returned, so Faust commits no offset ahead of Neo4j. The tick topic has as many
partitions as the source topic, so Faust assigns tick partition p with source partition p; a
tick gives the sweep of partition p an event context, which is what lets it change the table.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import weakref
from datetime import timedelta
from typing import Any

import faust
from mode.utils.logging import get_logger
from neo4j import AsyncGraphDatabase

from lineage_stream.dlq import DeadLetterSink
from lineage_stream.kafka_admin import by_run_topic_name, tick_topic_name
from lineage_stream.neo4j_writer import Neo4jWriter
from lineage_stream.openlineage import peek_run_id
from lineage_stream.operations import add_operations
from lineage_stream.pipeline import Message, Pipeline
from lineage_stream.settings import Settings

log = get_logger(__name__)

RUN_TABLE = "runs"
MAX_REQUEST_BYTES = 32 * 1024 * 1024
EXIT_SOFTWARE = 70  # sysexits.h: internal software error


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
        web_enabled=settings.web_port is not None,
        web_port=settings.web_port or 6066,
        web_host="127.0.0.1",
        stream_buffer_maxsize=max(4096, settings.batch_size * 2),
        broker_commit_interval=1.0,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_s / 3),
    )
    # bytes keys and values select Faust's raw codec: what the changelog restores is what
    # was stored.
    runs = app.Table(
        RUN_TABLE, default=None, partitions=partitions, key_type=bytes, value_type=bytes
    )
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    ticks = tick_topic_name(settings)
    if settings.repartition_by_run:
        by_run = app.topic(by_run_topic_name(settings), **raw)

        @app.agent(app.topic(settings.topic, **raw))
        async def repartition(stream: Any) -> None:
            # Sends attach to the source event: its offset commits only once they are written.
            async for event in stream.events():
                await by_run.send(key=peek_run_id(event.value), value=event.value)

        source = app.topic(by_run_topic_name(settings), ticks, **raw)
    else:
        source = app.topic(settings.topic, ticks, **raw)
    driver = AsyncGraphDatabase.driver(
        settings.neo4j_uri,
        auth=(settings.neo4j_user, settings.neo4j_password.get_secret_value()),
        notifications_min_severity="OFF",
    )
    writer = Neo4jWriter(driver, settings.neo4j_database)
    add_operations(app, settings, driver)
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
                    (Message(event.value, message.topic, message.partition, message.offset), event)
                )
            try:
                if batch:
                    await pipeline.handle(batch)
                for event in ticked:
                    await pipeline.sweep(event.message.partition, event)
            except Exception:
                # Faust would restart the agent with this batch unacked and stall forever;
                # exiting commits nothing past it, and the restarted worker retries it.
                log.exception("unexpected failure while processing a batch; exiting")
                os._exit(EXIT_SOFTWARE)
            for event in events:
                await stream.ack(event)

    @app.task  # type: ignore[untyped-decorator]
    async def tick() -> None:
        while True:
            for partition in range(partitions):
                await app.producer.send_and_wait(ticks, None, b"", partition, None, None)
            await asyncio.sleep(settings.sweep_interval_s)

    @app.on_before_shutdown.connect
    async def close_driver(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await driver.close()

    return app


def run_worker(settings: Settings, partitions: int) -> None:
    app = create_app(settings, partitions)
    logging.getLogger("neo4j").setLevel(logging.WARNING)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
