"""The worker's operations: /metrics, /healthz and /readyz on LINEAGE_METRICS_PORT, and the
optional periodic pruning of old runs.

The endpoints are an aiohttp server in the worker's own event loop, so the handlers read Faust's
consumer state without crossing threads. /healthz answers while the loop runs; /readyz also
needs assigned source partitions and a Neo4j that answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from neo4j import AsyncDriver
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from lineage_stream.kafka_admin import by_run_topic_name
from lineage_stream.metrics import CONSUMER_LAG
from lineage_stream.retention import prune_processes
from lineage_stream.settings import Settings

log = logging.getLogger(__name__)

NEO4J_PROBE_TIMEOUT_S = 3.0


class Operations:
    def __init__(
        self,
        app: Any,
        driver: AsyncDriver,
        source_topics: set[str],
        committed_offset: Callable[[Any], int | None],
    ) -> None:
        self._app = app
        self._driver = driver
        self._source_topics = source_topics
        self._committed_offset = committed_offset

    def _assigned(self) -> list[Any]:
        return sorted(
            tp for tp in self._app.consumer.assignment() if tp.topic in self._source_topics
        )

    def update_lag(self) -> None:
        consumer = self._app.consumer
        CONSUMER_LAG.clear()
        for tp in self._assigned():
            end = consumer.highwater(tp)
            committed = self._committed_offset(tp)
            if end is not None and committed is not None:
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, end - committed))

    async def neo4j_answers(self) -> bool:
        try:
            await asyncio.wait_for(self._driver.verify_connectivity(), NEO4J_PROBE_TIMEOUT_S)
        except Exception as exc:
            log.info("readiness: Neo4j does not answer: %s", exc or type(exc).__name__)
            return False
        return True

    async def metrics(self, request: web.Request) -> web.Response:
        self.update_lag()
        return web.Response(
            body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, request: web.Request) -> web.Response:
        problems = []
        if not self._assigned():
            problems.append("no source partitions assigned")
        if not await self.neo4j_answers():
            problems.append("Neo4j does not answer")
        if problems:
            return web.Response(status=503, text="not ready: " + "; ".join(problems) + "\n")
        return web.Response(text="ready\n")

    def routes(self) -> web.Application:
        server = web.Application()
        server.router.add_get("/metrics", self.metrics)
        server.router.add_get("/healthz", self.healthz)
        server.router.add_get("/readyz", self.readyz)
        return server


def add_operations(
    app: Any,
    settings: Settings,
    driver: AsyncDriver,
    committed_offset: Callable[[Any], int | None],
) -> None:
    """Register the endpoints and, when configured, the periodic pruning with the Faust app."""
    if settings.metrics_port != 0:
        _serve_endpoints(app, settings, driver, committed_offset)
    if settings.prune_older_than_days is not None:
        _prune_periodically(app, settings, driver, settings.prune_older_than_days)


def _prune_periodically(
    app: Any, settings: Settings, driver: AsyncDriver, older_than_days: float
) -> None:
    # The group's leader alone prunes, so several workers never delete the same runs at once.
    @app.timer(settings.prune_interval_s, on_leader=True)  # type: ignore[untyped-decorator]
    async def prune_old_runs() -> None:
        try:
            pruned = await prune_processes(
                driver,
                settings.neo4j_database,
                now=datetime.now(UTC),
                older_than=timedelta(days=older_than_days),
                keep_runs=settings.prune_keep_runs,
            )
        except Exception as exc:
            # Retention can wait for the next round; the data path must not stop for it.
            log.warning("pruning old runs failed: %s", exc)
            return
        log.info("pruned %d runs older than %g days", pruned, older_than_days)


def _serve_endpoints(
    app: Any,
    settings: Settings,
    driver: AsyncDriver,
    committed_offset: Callable[[Any], int | None],
) -> None:
    topics = {settings.topic, by_run_topic_name(settings)}
    operations = Operations(app, driver, topics, committed_offset)

    @app.task  # type: ignore[untyped-decorator]
    async def operations_server() -> None:
        runner = web.AppRunner(operations.routes(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
        except OSError as exc:
            # The data path matters more than its endpoints: keep consuming, say so loudly.
            log.error("cannot serve /metrics on port %d: %s", settings.metrics_port, exc)
            await runner.cleanup()
            return
        log.info("serving /metrics, /healthz, /readyz on port %d", settings.metrics_port)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
