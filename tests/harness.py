"""Real-stack test harness: the worker as a subprocess, producing, polling, graph snapshots."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from neo4j import Driver
from neo4j.time import DateTime
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")

KEY_PROPERTIES = {
    "Job": ("namespace", "name"),
    "Dataset": ("namespace", "name"),
    "Process": ("runId",),
    "Field": ("namespace", "name", "field"),
    "DatasetAlias": ("alias",),
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.25
) -> T:
    """Poll until probe returns something truthy; fail with `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


def produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, bytes]],
    compression: str = "none",
) -> int:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "compression.type": compression,
            "message.max.bytes": 32 * 1024 * 1024,
            "linger.ms": 5,
        }
    )
    count = 0
    for key, value in messages:
        producer.produce(topic, value=value, key=key)
        producer.poll(0)
        count += 1
    assert producer.flush(30) == 0, "messages were left undelivered"
    return count


@dataclass
class ConsumedMessage:
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    partition: int
    offset: int


def consume_all(
    bootstrap: str, topic: str, expected: int, timeout: float = 30
) -> list[ConsumedMessage]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique("reader"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    found: list[ConsumedMessage] = []
    deadline = time.monotonic() + timeout
    try:
        while len(found) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            headers = {k: v.decode() for k, v in (message.headers() or [])}
            found.append(
                ConsumedMessage(
                    message.key(), message.value(), headers, message.partition(), message.offset()
                )
            )
    finally:
        consumer.close()
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, DateTime):
        return value.iso_format()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _key(labels: list[str], props: Mapping[str, Any]) -> str:
    label = labels[0]
    return label + json.dumps([props.get(k) for k in KEY_PROPERTIES.get(label, ())])


@dataclass(frozen=True)
class GraphSnapshot:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: dict[str, dict[str, Any]] = field(default_factory=dict)

    def diff(self, other: GraphSnapshot) -> str:
        lines = []
        for kind, mine, theirs in (
            ("node", self.nodes, other.nodes),
            ("edge", self.edges, other.edges),
        ):
            for key in sorted(mine.keys() - theirs.keys()):
                lines.append(f"- {kind} only left: {key}")
            for key in sorted(theirs.keys() - mine.keys()):
                lines.append(f"- {kind} only right: {key}")
            for key in sorted(mine.keys() & theirs.keys()):
                if mine[key] != theirs[key]:
                    names = sorted(mine[key].keys() | theirs[key].keys())
                    differing = {
                        name: (mine[key].get(name), theirs[key].get(name))
                        for name in names
                        if mine[key].get(name) != theirs[key].get(name)
                    }
                    lines.append(f"- {kind} {key}: (left, right) {differing}")
        return "\n".join(lines[:60])


def snapshot(driver: Driver, database: str = "neo4j") -> GraphSnapshot:
    nodes: dict[str, dict[str, Any]] = {}
    edges: dict[str, dict[str, Any]] = {}
    records, _, _ = driver.execute_query(
        "MATCH (n) RETURN labels(n) AS labels, properties(n) AS props", database_=database
    )
    for record in records:
        props = {k: _plain(v) for k, v in record["props"].items()}
        nodes[_key(record["labels"], props)] = props
    records, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN labels(a) AS la, properties(a) AS pa, type(r) AS type, "
        "properties(r) AS pr, labels(b) AS lb, properties(b) AS pb",
        database_=database,
    )
    for record in records:
        source, target = _key(record["la"], record["pa"]), _key(record["lb"], record["pb"])
        # One DERIVES edge per job that derives the field, so the job is part of its identity.
        via = record["pr"].get("jobName", "") if record["type"] == "DERIVES" else ""
        key = f"{source} -{record['type']}{via and f' {via}'}-> {target}"
        assert key not in edges, f"duplicate edge {key}"
        edges[key] = {k: _plain(v) for k, v in record["pr"].items()}
    return GraphSnapshot(nodes, edges)


def uncommitted(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """Per partition, how many messages lie beyond the group's committed offset (0 when none)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed(
            [TopicPartition(topic, partition) for partition in partitions], timeout=10
        )
        behind = {}
        for tp in committed:
            _, end = consumer.get_watermark_offsets(tp, timeout=10)
            behind[tp.partition] = end - max(tp.offset, 0)
        return behind
    finally:
        consumer.close()


def clear_graph(driver: Driver, database: str = "neo4j") -> None:
    with driver.session(database=database) as session:
        # CALL ... IN TRANSACTIONS needs an implicit (auto-commit) transaction.
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()


class WorkerProcess:
    """`lineage-stream worker` as a real subprocess with its own environment and log file."""

    # Every started worker not yet stopped: a test that fails between start and stop must not
    # leave a worker writing into the graph of the tests after it (see tests/conftest.py).
    running: ClassVar[set[WorkerProcess]] = set()

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lineage_stream", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        WorkerProcess.running.add(self)
        return self

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def assert_alive(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        assert code is None, f"worker exited with {code}:\n{self.log_tail()}"

    def kill(self) -> None:
        """SIGKILL, unless it has exited already."""
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        WorkerProcess.running.discard(self)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        WorkerProcess.running.discard(self)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
                raise AssertionError(f"worker ignored SIGTERM:\n{self.log_tail()}") from None
        return self.process.returncode


def end_workers(workers: Iterable[WorkerProcess]) -> list[str]:
    """Kill those of these workers still running; returns their log files."""
    killed = []
    for worker in list(workers):
        assert worker.process is not None
        if worker.process.poll() is None:
            killed.append(str(worker.log_path))
        worker.kill()
    return killed


def run_count(driver: Driver, where: str = "true") -> int:
    records, _, _ = driver.execute_query(f"MATCH (p:Process) WHERE {where} RETURN count(p) AS n")
    return int(records[0]["n"])


def wait_for_run(
    worker: WorkerProcess, driver: Driver, run_id: str, state: str, what: str, timeout: float = 90
) -> None:
    """Wait until the worker has written the run in this state."""

    def written() -> bool:
        worker.assert_alive()
        records, _, _ = driver.execute_query(
            "MATCH (p:Process {runId: $runId, state: $state}) RETURN count(p) AS n",
            runId=run_id,
            state=state,
        )
        return records[0]["n"] == 1

    wait_until(written, timeout=timeout, what=what)


def refused_worker(env: Mapping[str, str]) -> str:
    """Start `lineage-stream worker`, expecting a refusal: exit 2 and no traceback.

    Returns its stderr with the console's line wrapping undone.
    """
    done = subprocess.run(
        [sys.executable, "-m", "lineage_stream", "worker"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return " ".join(done.stderr.split())


def drain(worker: WorkerProcess, bootstrap: str, topic: str, timeout: float = 180) -> None:
    """Wait until the worker's group has committed every message of the topic.

    Counting finished runs is not enough: a run's START may still be on its way after its
    COMPLETE, and the committed offsets are what a restarted worker resumes from.
    """
    group = worker.env["LINEAGE_CONSUMER_GROUP"]

    def everything_committed() -> bool:
        worker.assert_alive()
        try:
            return not any(uncommitted(bootstrap, group, topic).values())
        except KafkaException:  # a restarted broker's coordinator is moving: ask again
            return False

    wait_until(
        everything_committed, timeout=timeout, what=f"group {group} to commit all of {topic}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base: str) -> Samples:
    status, text = get(f"{base}/metrics")
    if status != 200:
        return {}
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {
        dict(labels)[label]: value for (metric, labels), value in samples.items() if metric == name
    }


def value(samples: Samples, name: str) -> float:
    return samples.get((name, frozenset()), 0.0)
