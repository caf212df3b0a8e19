"""`lineage-stream prune` on the real Neo4j: exactly the old finished runs go, in small
transactions; each job's latest runs, datasets' last writers and running runs stay."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from neo4j import AsyncGraphDatabase, Driver

from lineage_stream.neo4j_writer import Neo4jWriter
from lineage_stream.openlineage import RunEvent, encode, parse
from lineage_stream.pairing import fold
from lineage_stream.replay import Line, Replay
from tests.builders import dataset, run_event
from tests.harness import WorkerProcess, unique, wait_until
from tests.integration.test_worker import create_topic, worker_env

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
LAKE = "s3://lake"
TEN_DAYS = timedelta(days=10)


def ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def run_id(name: str) -> str:
    """A stable runId per test name, so failures name the run."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"prune/{name}"))


def finished_run(
    name: str, job: str, days_ago: int, outcome: str, output: str
) -> list[dict[str, Any]]:
    started = NOW - timedelta(days=days_ago)
    ended = started + timedelta(hours=1)
    return [
        run_event("START", run_id(name), ("ops", job), at=started.isoformat()),
        run_event(
            outcome,
            run_id(name),
            ("ops", job),
            at=ended.isoformat(),
            outputs=[dataset(LAKE, output, fields=["id"])],
        ),
    ]


def history() -> list[dict[str, Any]]:
    events = []
    for days in (1, 60, 70, 80, 100):
        events += finished_run(f"daily-{days}", "daily", days, "COMPLETE", "/a")
    # The only run that ever wrote /only-90: the dataset's lastWrittenBy.
    events += finished_run("daily-90", "daily", 90, "COMPLETE", "/only-90")
    for days in (40, 50, 200):
        events += finished_run(f"flaky-{days}", "flaky", days, "FAIL", "/b")
    for days in (300, 310, 320):
        # Never finished: the streaming job's runs are RUNNING however old.
        started = (NOW - timedelta(days=days)).isoformat()
        events.append(
            run_event(
                "START",
                run_id(f"stream-{days}"),
                ("ops", "stream"),
                at=started,
                processing_type="STREAMING",
            )
        )
    return events


def write(neo4j_uri: str, auth: tuple[str, str], events: list[dict[str, Any]]) -> None:
    async def replay() -> None:
        async with AsyncGraphDatabase.driver(neo4j_uri, auth=auth) as driver:
            writer = Neo4jWriter(driver, "neo4j")
            lines = [Line(n, encode(doc)) for n, doc in enumerate(events, start=1)]
            report = await Replay(writer, batch_size=5, max_event_bytes=1 << 20).run(lines)
            assert not report.invalid

    asyncio.run(replay())


def prune(neo4j_uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lineage_stream", "prune", *args],
        env={**os.environ, "LINEAGE_NEO4J_URI": neo4j_uri},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def runs(driver: Driver) -> set[str]:
    records, _, _ = driver.execute_query("MATCH (p:Process) RETURN p.runId AS run")
    return {record["run"] for record in records}


def test_prune_deletes_exactly_the_old_finished_runs_nobody_needs(
    neo4j_uri: str, neo4j_auth: tuple[str, str], empty_graph: Driver
) -> None:
    write(neo4j_uri, neo4j_auth, history())
    everything = runs(empty_graph)
    assert len(everything) == 12

    first = prune(neo4j_uri, "--older-than-days", "150", "--keep-runs", "2", "--batch-size", "2")
    assert first.returncode == 0, first.stderr
    assert "pruned 1 runs" in first.stderr
    assert runs(empty_graph) == everything - {run_id("flaky-200")}

    second = prune(neo4j_uri, "--older-than-days", "30", "--keep-runs", "2", "--batch-size", "2")
    assert second.returncode == 0, second.stderr
    assert "pruned 3 runs" in second.stderr
    gone = {run_id(f"daily-{days}") for days in (70, 80, 100)}
    assert runs(empty_graph) == everything - {run_id("flaky-200")} - gone

    # Jobs and datasets stay; the kept runs keep their edges; the latest run is still the job's.
    records, _, _ = empty_graph.execute_query(
        "MATCH (d:Dataset) OPTIONAL MATCH (p:Process)-[:OUTPUT_TO]->(d) "
        "RETURN d.name AS name, d.lastWrittenBy AS lastWriter, collect(p.runId) AS writers"
    )
    writers = {r["name"]: (r["lastWriter"], sorted(r["writers"])) for r in records}
    assert writers == {
        "/a": (run_id("daily-1"), sorted([run_id("daily-1"), run_id("daily-60")])),
        "/only-90": (run_id("daily-90"), [run_id("daily-90")]),
        "/b": (run_id("flaky-40"), sorted([run_id("flaky-40"), run_id("flaky-50")])),
    }
    records, _, _ = empty_graph.execute_query(
        "MATCH (j:Job) RETURN j.name AS job, j.lastRunId AS lastRun"
    )
    assert {r["job"]: r["lastRun"] for r in records} == {
        "daily": run_id("daily-1"),
        "flaky": run_id("flaky-40"),
        "stream": run_id("stream-300"),
    }


def test_an_abandoned_run_ages_from_when_it_became_abandoned(
    neo4j_uri: str, neo4j_auth: tuple[str, str], empty_graph: Driver
) -> None:
    """Quiet for 35 days, abandoned after a 10-day run timeout: abandoned 25 days ago."""
    recent = [finished_run(f"stuck-{days}", "stuck", days, "COMPLETE", "/s") for days in (1, 2)]
    write(neo4j_uri, neo4j_auth, [event for run in recent for event in run])
    quiet = parse(
        encode(run_event("START", run_id("stuck-35"), ("ops", "stuck"), at=ago(35).isoformat())),
        max_bytes=1 << 20,
        now=NOW,
    )
    assert isinstance(quiet, RunEvent)

    async def abandon() -> None:
        async with AsyncGraphDatabase.driver(neo4j_uri, auth=neo4j_auth) as driver:
            await Neo4jWriter(driver, "neo4j").write([quiet], [fold(None, quiet).abandon(TEN_DAYS)])

    asyncio.run(abandon())

    kept = prune(neo4j_uri, "--older-than-days", "30", "--keep-runs", "2")
    assert kept.returncode == 0, kept.stderr
    assert run_id("stuck-35") in runs(empty_graph)
    pruned = prune(neo4j_uri, "--older-than-days", "20", "--keep-runs", "2")
    assert pruned.returncode == 0, pruned.stderr
    assert runs(empty_graph) == {run_id("stuck-1"), run_id("stuck-2")}


def test_prune_rejects_keeping_no_runs(neo4j_uri: str) -> None:
    result = prune(neo4j_uri, "--older-than-days", "30", "--keep-runs", "0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_the_worker_prunes_periodically_when_asked(
    kafka_bootstrap: str,
    neo4j_uri: str,
    neo4j_auth: tuple[str, str],
    empty_graph: Driver,
    tmp_path: Path,
) -> None:
    write(neo4j_uri, neo4j_auth, history())
    everything = runs(empty_graph)
    topic = unique("prune")
    create_topic(kafka_bootstrap, topic, partitions=1)
    env = worker_env(
        kafka_bootstrap,
        neo4j_uri,
        topic,
        LINEAGE_METRICS_PORT="0",
        LINEAGE_PRUNE_OLDER_THAN_DAYS="30",
        LINEAGE_PRUNE_KEEP_RUNS="2",
        LINEAGE_PRUNE_INTERVAL_S="2",
    )
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    expected = everything - {run_id(f"daily-{days}") for days in (70, 80, 100)}
    expected -= {run_id("flaky-200")}
    try:

        def pruned() -> set[str] | None:
            worker.assert_alive()
            remaining = runs(empty_graph)
            return remaining if remaining != everything else None

        assert wait_until(pruned, timeout=90, what="the worker to prune") == expected
    finally:
        assert worker.stop() == 0
