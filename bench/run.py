"""`make bench`: lineage-stream against a naive consumer and the Neo4j ceiling, on one stack.

Every contender gets the same generated events and an empty graph:
- worker (keyed): `lineage-stream worker` draining a preloaded, Spark-keyed topic;
- worker (repartition): the same with LINEAGE_REPARTITION_BY_RUN=true;
- naive: bench/naive.py, one transaction per event (time-capped: it is slow);
- ceiling: bench/ceiling.py, the worker's own writes as pre-built UNWIND batches;
then end-to-end latency of the worker at a fixed offered load.

A Kafka consumer has drained the topic when its group's committed offsets equal the end offsets.
Throughput is the steady rate between 10% and 90% of the events committed, so start-up (Faust
joins the group, the JVMs warm up) does not count; the wall time from process start is reported
too. Results go to bench/results/<date>.json; bench/report.py turns them into the doc's table.

    python -m bench.run [--events N] [--seed S] [--only worker,naive,...]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from neo4j import Driver, GraphDatabase
from neo4j.exceptions import TransientError
from prometheus_client.parser import text_string_to_metric_families

import lineage_stream
from bench import ceiling
from bench.generator import FleetProfile, GeneratedEvent, fleet

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
PARTITIONS = 6
BATCH_SIZE = 500
# Six batches: each statement planned and run several times before anything is timed.
WARM_UP_EVENTS = 3_000
TOPIC_MAX_MESSAGE_BYTES = 8 * 1024 * 1024
SAMPLE_INTERVAL_S = 0.5
CONTENDERS = (
    "worker",
    "warm",
    "repartition",
    "two-workers",
    "naive",
    "ceiling",
    "latency",
    "open-runs",
)


def load_stack() -> ModuleType:
    """deploy/local/stack.py, the local stack's launcher (a script, not a package)."""
    sys.path.insert(0, str(REPO / "deploy" / "local"))
    return importlib.import_module("stack")


def say(text: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {text}", flush=True)


# Kafka


def create_topic(bootstrap: str, name: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(
        name,
        num_partitions=partitions,
        config={"max.message.bytes": str(TOPIC_MAX_MESSAGE_BYTES)},
    )
    admin.create_topics([topic])[name].result(30)


@contextlib.contextmanager
def removing_created_topics(bootstrap: str) -> Iterator[None]:
    """Delete, on the way out, every `bench-` topic created meanwhile: the preloaded topics, their
    dead-letter topics and the workers' changelog, tick and by-run topics. Kept, a day of runs
    filled the stack's Kafka with 9,000 partitions and 24 GB."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        before = set(admin.list_topics(timeout=30).topics)
    except KafkaException as exc:
        raise SystemExit(
            f"Kafka at {bootstrap} did not answer ({exc.args[0].str()}): "
            "start the local stack with `make stack-up`"
        ) from None
    try:
        yield
    finally:
        created = sorted(
            name
            for name in admin.list_topics(timeout=30).topics
            if name.startswith("bench-") and name not in before
        )
        if created:
            for future in admin.delete_topics(created, operation_timeout=60).values():
                future.result(90)
            say(f"deleted the {len(created)} topics this run created")


def producer(bootstrap: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "compression.type": "lz4",
            "message.max.bytes": TOPIC_MAX_MESSAGE_BYTES + 4096,
            "linger.ms": 10,
            "queue.buffering.max.kbytes": 512 * 1024,
        }
    )


def preload(bootstrap: str, topic: str, events: Sequence[GeneratedEvent]) -> None:
    sender = producer(bootstrap)
    for event in events:
        while True:
            try:
                sender.produce(topic, value=event.value, key=event.key)
                break
            except BufferError:
                sender.poll(0.1)
        sender.poll(0)
    left = sender.flush(120)
    if left:
        raise SystemExit(f"{left} events were not delivered to {topic}")


class Offsets:
    """Committed and end offsets of one consumer group on some topics."""

    def __init__(self, bootstrap: str) -> None:
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-offsets"})

    def partitions(self, topic: str) -> list[TopicPartition]:
        # Metadata of all topics: asking for one by name would have the broker create it.
        metadata = self.admin.list_topics(timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        return [TopicPartition(topic, p) for p in sorted(metadata.partitions)]

    def end(self, topic: str) -> int:
        return sum(
            self.reader.get_watermark_offsets(tp, timeout=10)[1] for tp in self.partitions(topic)
        )

    def committed(self, group: str, topic: str) -> int:
        partitions = self.partitions(topic)
        if not partitions:
            return 0
        request = ConsumerGroupTopicPartitions(group, partitions)
        result = self.admin.list_consumer_group_offsets([request])[group].result(10)
        return sum(max(tp.offset, 0) for tp in result.topic_partitions)

    def close(self) -> None:
        self.reader.close()


# Processes


@dataclass
class Usage:
    """CPU seconds and peak RSS of one process (and its children) over a window."""

    process: psutil.Process
    cpu_start: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss: int = 0

    @staticmethod
    def _cpu(process: psutil.Process) -> float:
        times = process.cpu_times()
        return times.user + times.system

    def _tree_cpu(self) -> float:
        total = self._cpu(self.process)
        for child in self.process.children(recursive=True):
            try:
                total += self._cpu(child)
            except psutil.NoSuchProcess:
                continue
        return total

    def begin(self) -> None:
        self.cpu_start = self._tree_cpu()

    def sample(self) -> None:
        try:
            rss = self.process.memory_info().rss
            self.peak_rss = max(self.peak_rss, rss)
            self.cpu_seconds = self._tree_cpu() - self.cpu_start
        except psutil.NoSuchProcess:
            return


def service_usage(stack_root: Path) -> dict[str, Usage]:
    """Usage trackers of the stack's Kafka and Neo4j JVMs, found by their pid files."""
    usages = {}
    for service in ("kafka", "neo4j"):
        pid_file = stack_root / f"{service}.pid"
        if pid_file.exists():
            try:
                usages[service] = Usage(psutil.Process(int(pid_file.read_text().strip())))
            except (psutil.NoSuchProcess, ValueError):
                continue
    return usages


@dataclass
class Drain:
    name: str
    events: int
    runs: int
    wall_s: float = 0.0
    steady_s: float = 0.0
    events_per_s: float = 0.0
    runs_per_s: float = 0.0
    completed: bool = False
    processed: int = 0
    peak_rss_mib: float = 0.0
    cpu_cores: float = 0.0
    service_cpu_cores: dict[str, float] = field(default_factory=dict)
    progress: list[tuple[float, int]] = field(default_factory=list)
    graph: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    """Micro-batches the workers wrote, and the seconds their Neo4j transactions took in all:
    what the drain spent waiting on Neo4j (from the workers' own metrics)."""
    neo4j_write_s: float = 0.0


def steady_rate(progress: list[tuple[float, int]], total: int) -> tuple[float, float]:
    """Seconds and events/s between 10% and 90% of `total` (or of what was reached)."""
    reached = progress[-1][1] if progress else 0
    if reached == 0:
        return 0.0, 0.0
    goal = total if reached >= total else reached
    low, high = 0.1 * goal, 0.9 * goal
    t_low = next(t for t, n in progress if n >= low)
    t_high = next(t for t, n in progress if n >= high)
    n_low = next(n for _, n in progress if n >= low)
    n_high = next(n for _, n in progress if n >= high)
    if t_high <= t_low:
        return 0.0, 0.0
    return t_high - t_low, (n_high - n_low) / (t_high - t_low)


def stop_workers(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """SIGTERM all, then SIGKILL what has not exited within a minute."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def drain(
    name: str,
    commands: list[tuple[list[str], dict[str, str]]],
    offsets: Offsets,
    group: str,
    progress_topic: str,
    done: Callable[[], bool],
    events: int,
    runs: int,
    services: dict[str, Usage],
    log_path: Path,
    cap_s: float,
    metrics_ports: Sequence[int] = (),
) -> Drain:
    """Run the processes of one contender until `done()` or the cap, sampling their progress;
    then read the batch metrics of the workers serving them on `metrics_ports`."""
    result = Drain(name, events, runs)
    processes = []
    with log_path.open("ab") as log:
        for command, env in commands:
            processes.append(
                subprocess.Popen(
                    command,
                    env={**os.environ, **env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    cwd=REPO,
                )
            )
    usages = [Usage(psutil.Process(process.pid)) for process in processes]
    for usage in [*usages, *services.values()]:
        usage.begin()
    started = time.monotonic()
    try:
        while True:
            time.sleep(SAMPLE_INTERVAL_S)
            for process in processes:
                if process.poll() is not None:
                    raise SystemExit(f"{name} exited with {process.returncode}; see {log_path}")
            for usage in [*usages, *services.values()]:
                usage.sample()
            elapsed = time.monotonic() - started
            result.progress.append((round(elapsed, 2), offsets.committed(group, progress_topic)))
            if done():
                result.completed = True
                # done() may have seen commits the sample just before it did not.
                final = offsets.committed(group, progress_topic)
                result.progress.append((round(time.monotonic() - started, 2), final))
                break
            if elapsed > cap_s:
                say(f"{name}: stopped at the {cap_s:.0f} s cap")
                break
        result.wall_s = time.monotonic() - started
        for port in metrics_ports:
            batches, write_s = worker_writes(port)
            result.batches += batches
            result.neo4j_write_s += write_s
    finally:
        stop_workers(processes)
    result.processed = result.progress[-1][1] if result.progress else 0
    result.steady_s, result.events_per_s = steady_rate(result.progress, events)
    result.runs_per_s = result.events_per_s * runs / events
    result.peak_rss_mib = sum(usage.peak_rss for usage in usages) / 2**20
    cpu_seconds = sum(usage.cpu_seconds for usage in usages)
    result.cpu_cores = cpu_seconds / result.wall_s if result.wall_s else 0.0
    result.service_cpu_cores = {
        service: round(u.cpu_seconds / result.wall_s, 2) for service, u in services.items()
    }
    say(
        f"{name}: {result.processed}/{events} events, steady {result.events_per_s:.0f} events/s "
        f"({result.runs_per_s:.0f} runs/s), wall {result.wall_s:.1f} s, "
        f"peak RSS {result.peak_rss_mib:.0f} MiB, {result.cpu_cores:.2f} cores"
    )
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def worker_writes(port: int) -> tuple[int, float]:
    """Batches a worker wrote and the seconds its Neo4j transactions took, from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return (
        int(samples.get("lineage_stream_batch_size_events_count", 0)),
        samples.get("lineage_stream_neo4j_write_duration_seconds_sum", 0.0),
    )


def start_events(count: int) -> list[GeneratedEvent]:
    """Small START events of `count` distinct runs over 1,000 jobs, keyed as Spark keys them."""
    now = datetime.now(UTC)
    events = []
    for index in range(count):
        run_id = str(uuid.uuid4())
        job = f"open-runs.job_{index % 1000:04d}"
        event = {
            "eventType": "START",
            "eventTime": now.isoformat(),
            "run": {"runId": run_id},
            "job": {"namespace": "bench", "name": job},
            "inputs": [],
            "outputs": [],
            "producer": "https://github.com/lineage-stream/bench",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        }
        events.append(
            GeneratedEvent(
                key=f"run:bench/{job}".encode(),
                value=json.dumps(event).encode(),
                run_id=run_id,
                event_type="START",
                event_time=now,
                is_application=True,
            )
        )
    return events


# Neo4j


def clear_graph(driver: Driver) -> None:
    # Relationships first, in small transactions: a Field or hot Dataset holds thousands, and
    # detaching them with their node in one transaction exhausts Neo4j's transaction memory.
    # Each statement is retried whole: Neo4j once reported a deadlock within the node deletes.
    for statement in (
        "MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS",
        "MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 10000 ROWS",
    ):
        for attempt in range(1, 6):
            try:
                with driver.session() as session:
                    session.run(statement).consume()
                break
            except TransientError:
                if attempt == 5:
                    raise
                time.sleep(attempt)


def graph_counts(driver: Driver) -> dict[str, int]:
    records, _, _ = driver.execute_query(
        "MATCH (n) RETURN labels(n)[0] AS label, count(*) AS n ORDER BY label"
    )
    nodes = {record["label"]: record["n"] for record in records}
    records, _, _ = driver.execute_query("MATCH ()-[r]->() RETURN count(r) AS n")
    return {**nodes, "relationships": records[0]["n"]}


# A warm graph: about a million nodes of another namespace, shaped like a fleet's (datasets
# with fields, jobs with runs), so indexes and the page cache hold more than the workload's.
WARM_SEED = (
    (
        "datasets",
        """UNWIND range(0, $datasets - 1) AS i
CALL (i) {
  CREATE (:Dataset {namespace: 'warm://seed', name: 'table_' + i,
                    fields: ['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7']})
} IN TRANSACTIONS OF 10000 ROWS""",
    ),
    (
        "fields",
        """UNWIND range(0, $datasets * 8 - 1) AS i
CALL (i) {
  MATCH (d:Dataset {namespace: 'warm://seed', name: 'table_' + (i / 8)})
  CREATE (d)-[:HAS_FIELD]->(:Field {namespace: 'warm://seed', name: d.name, field: 'c' + (i % 8)})
} IN TRANSACTIONS OF 10000 ROWS""",
    ),
    (
        "jobs and runs",
        """UNWIND range(0, $datasets - 1) AS i
CALL (i) {
  MERGE (j:Job {namespace: 'warm://seed', name: 'job_' + (i / 5)})
  CREATE (j)-[:HAS_RUN]->(:Process {runId: 'warm-' + i, state: 'COMPLETE',
                                    jobNamespace: 'warm://seed', jobName: j.name})
} IN TRANSACTIONS OF 10000 ROWS""",
    ),
)
WARM_DATASETS = 100_000  # x (1 + 8 fields + 1 run) + 20,000 jobs = 1.02M nodes


def warm_graph(driver: Driver) -> None:
    for what, statement in WARM_SEED:
        started = time.monotonic()
        with driver.session() as session:
            session.run(statement, datasets=WARM_DATASETS).consume()
        say(f"warm: seeded {what} in {time.monotonic() - started:.0f} s")


# Contenders


@dataclass
class Bench:
    stack: Any
    driver: Driver
    offsets: Offsets
    topic: str
    events: list[GeneratedEvent]
    runs: int
    logs: Path
    naive_cap_s: float
    worker_cap_s: float
    profile: bool

    @property
    def services(self) -> dict[str, Usage]:
        return service_usage(self.stack.root)

    def worker_env(self, group: str, topic: str, **extra: str) -> dict[str, str]:
        return {
            "LINEAGE_KAFKA_BOOTSTRAP_SERVERS": self.stack.bootstrap,
            "LINEAGE_NEO4J_URI": self.stack.bolt_uri,
            "LINEAGE_NEO4J_PASSWORD": self.stack.password,
            "LINEAGE_TOPIC": topic,
            "LINEAGE_DLQ_TOPIC": f"{topic}.dlq",
            "LINEAGE_CONSUMER_GROUP": group,
            "LINEAGE_BATCH_SIZE": str(BATCH_SIZE),
            "LINEAGE_DATA_DIR": str(self.logs / group),
            "LINEAGE_LOG_LEVEL": "warning",
            "LINEAGE_METRICS_PORT": "0",
            **extra,
        }

    def worker(
        self, name: str, repartition: bool = False, processes: int = 1, warm: bool = False
    ) -> Drain:
        clear_graph(self.driver)
        if warm:
            warm_graph(self.driver)
        group = f"bench-{name}-{uuid.uuid4().hex[:6]}"
        env = self.worker_env(group, self.topic)
        progress_topic = self.topic
        if repartition:
            env["LINEAGE_REPARTITION_BY_RUN"] = "true"
            progress_topic = f"{group}-by-run"
        total = len(self.events)

        def drained() -> bool:
            if self.offsets.committed(group, self.topic) < total:
                return False
            if not repartition:
                return True
            return self.offsets.committed(group, progress_topic) >= total

        command = [sys.executable, "-m", "lineage_stream", "worker"]
        ports = [free_port() for _ in range(processes)]
        commands = [
            (
                command,
                {
                    **env,
                    "LINEAGE_DATA_DIR": f"{env['LINEAGE_DATA_DIR']}/{index}",
                    "LINEAGE_METRICS_PORT": str(port),
                },
            )
            for index, port in enumerate(ports)
        ]
        if self.profile:
            # pyinstrument samples the first worker's wall time, awaits included, and writes
            # its report when SIGTERM ends the worker.
            report = str(self.logs / f"{name}.pyinstrument.txt")
            profiled = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", report]
            commands[0] = ([*profiled, *command[1:]], commands[0][1])
        result = drain(
            name,
            commands,
            self.offsets,
            group,
            progress_topic,
            drained,
            total,
            self.runs,
            self.services,
            self.logs / f"{name}.log",
            self.worker_cap_s,
            ports,
        )
        if result.batches:
            each = result.neo4j_write_s / result.batches
            say(
                f"{name}: {result.batches} batches, their Neo4j transactions "
                f"{result.neo4j_write_s:.1f} s in all ({each:.2f} s each)"
            )
        result.graph = graph_counts(self.driver)
        say(f"{name}: graph {result.graph}")
        return result

    def open_runs(self, count: int) -> Drain:
        """Worker RSS holding `count` runs that started and never finished (RocksDB store)."""
        clear_graph(self.driver)
        topic = f"bench-open-{uuid.uuid4().hex[:8]}"
        create_topic(self.stack.bootstrap, topic)
        say(f"open-runs: preloading {count} START events to {topic}")
        preload(self.stack.bootstrap, topic, start_events(count))
        group = f"bench-open-{uuid.uuid4().hex[:6]}"
        env = self.worker_env(group, topic, LINEAGE_STORE="rocksdb")
        result = drain(
            "open-runs",
            [([sys.executable, "-m", "lineage_stream", "worker"], env)],
            self.offsets,
            group,
            topic,
            lambda: self.offsets.committed(group, topic) >= count,
            count,
            count,
            self.services,
            self.logs / "open-runs.log",
            self.worker_cap_s,
        )
        result.graph = graph_counts(self.driver)
        return result

    def naive(self) -> Drain:
        clear_graph(self.driver)
        group = f"bench-naive-{uuid.uuid4().hex[:6]}"
        total = len(self.events)
        command = [
            sys.executable,
            "-m",
            "bench.naive",
            "--bootstrap",
            self.stack.bootstrap,
            "--topic",
            self.topic,
            "--group",
            group,
            "--uri",
            self.stack.bolt_uri,
            "--password",
            self.stack.password,
        ]
        return drain(
            "naive",
            [(command, {})],
            self.offsets,
            group,
            self.topic,
            lambda: self.offsets.committed(group, self.topic) >= total,
            total,
            self.runs,
            self.services,
            self.logs / "naive.log",
            self.naive_cap_s,
        )

    def warm_up(self) -> None:
        """Replay part of the workload once, untimed, so the first contender does not pay for a
        freshly started Neo4j (JIT compilation, query plans, page cache)."""
        events = self.events[:WARM_UP_EVENTS]
        say(f"warming Neo4j up: replaying {len(events)} events' writes (untimed)")
        clear_graph(self.driver)
        ceiling.replay(self.driver, ceiling.prepare((e.value for e in events), BATCH_SIZE))
        clear_graph(self.driver)

    def ceiling(self) -> Drain:
        clear_graph(self.driver)
        say("ceiling: preparing rows (untimed)")
        batches = ceiling.prepare((e.value for e in self.events), BATCH_SIZE)
        services = self.services
        for usage in services.values():
            usage.begin()
        seconds = ceiling.replay(self.driver, batches)
        for usage in services.values():
            usage.sample()
        total = len(self.events)
        result = Drain("ceiling", total, self.runs, wall_s=seconds, steady_s=seconds)
        result.completed, result.processed = True, total
        result.events_per_s = total / seconds
        result.runs_per_s = self.runs / seconds
        result.service_cpu_cores = {
            service: round(u.cpu_seconds / seconds, 2) for service, u in services.items()
        }
        say(f"ceiling: {result.events_per_s:.0f} events/s in {seconds:.1f} s")
        result.graph = graph_counts(self.driver)
        say(f"ceiling: graph {result.graph}")
        return result


# Latency


@dataclass
class Latency:
    offered_per_s: float
    seconds: float
    workers: int
    batch_size: int
    fleet_warm_up: int
    sent: int
    tracked: int
    seen: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    poll_interval_ms: float
    cpu_cores: dict[str, float] = field(default_factory=dict)
    """Cores each part of the machine used while the load was offered: the workers, Neo4j,
    Kafka, this harness (producing and polling), every process together (`machine`) and the
    time the hypervisor gave to other guests (`steal`)."""


def machine_cpu() -> tuple[float, float]:
    """Seconds the machine's CPUs have been busy since boot, and those the hypervisor stole."""
    times = psutil.cpu_times()
    busy = ("user", "nice", "system", "irq", "softirq")  # guest time is within user and nice
    return sum(getattr(times, name, 0.0) for name in busy), getattr(times, "steal", 0.0)


class CpuWindow:
    """Cores used over a window by the workers, the stack's services, this harness and the
    machine as a whole."""

    def __init__(self, workers: Sequence[subprocess.Popen[bytes]], services: dict[str, Usage]):
        self._parts: dict[str, list[Usage]] = {
            "workers": [Usage(psutil.Process(process.pid)) for process in workers],
            **{service: [usage] for service, usage in services.items()},
        }
        self._harness = psutil.Process()
        self._started = 0.0
        self._harness_start = 0.0
        self._machine_start = (0.0, 0.0)

    def _harness_cpu(self) -> float:
        # Its own threads only: the workers are its children.
        times = self._harness.cpu_times()
        return times.user + times.system

    def begin(self) -> None:
        for usages in self._parts.values():
            for usage in usages:
                usage.begin()
        self._harness_start = self._harness_cpu()
        self._machine_start = machine_cpu()
        self._started = time.monotonic()

    def cores(self) -> dict[str, float]:
        seconds = time.monotonic() - self._started
        used: dict[str, float] = {}
        for part, usages in self._parts.items():
            for usage in usages:
                usage.sample()
            used[part] = sum(usage.cpu_seconds for usage in usages)
        used["harness"] = self._harness_cpu() - self._harness_start
        busy, steal = machine_cpu()
        used["machine"] = busy - self._machine_start[0]
        used["steal"] = steal - self._machine_start[1]
        return {part: round(cpu / seconds, 2) for part, cpu in used.items()}


@dataclass(frozen=True)
class LatencyLoad:
    rate: float
    profile: FleetProfile
    fleet_warm_up: int = 0
    """Events of the same fleet drained before timing starts: the fleet has run before, so the
    worker's written-columns cache knows its jobs' lineage, as in production after start-up."""


# Offered loads: the target's 1,000 events/s of small events, and the realistic mix (without its
# MB tail, which would make this a bandwidth test) at a rate the worker sustains. A fresh fleet
# (the generator's first minutes: almost every job runs for the first time, and column lineage
# is most of the writes) and the same fleet in its steady state, after about 20 minutes of it.
SMALL_EVENTS = FleetProfile(max_inputs=3, max_columns=20, large_event_rate=0.0)
STEADY_FLEET_WARM_UP = 40_000
LATENCY_LOADS = {
    "small events at 1000/s": LatencyLoad(1000.0, SMALL_EVENTS),
    "small events at 300/s": LatencyLoad(300.0, SMALL_EVENTS),
    "realistic mix at 30/s": LatencyLoad(30.0, FleetProfile(large_event_rate=0.0)),
    "small events at 1000/s, steady fleet": LatencyLoad(1000.0, SMALL_EVENTS, STEADY_FLEET_WARM_UP),
    "small events at 300/s, steady fleet": LatencyLoad(300.0, SMALL_EVENTS, STEADY_FLEET_WARM_UP),
}


# At most this many events a second are timed (every 10th at 1,000/s): polling Neo4j for every
# event in flight would cost Neo4j a good part of a core, on the cores the worker shares.
TIMED_PER_S = 100


def group_members(admin: AdminClient, group: str) -> int:
    """Members of a consumer group that hold partitions (0 while it rebalances)."""
    [described] = admin.describe_consumer_groups([group]).values()
    members = described.result(10).members
    return sum(1 for member in members if member.assignment.topic_partitions)


def latency(
    bench: Bench,
    load: LatencyLoad,
    seconds: float,
    seed: int,
    workers: int = 1,
    batch_size: int = BATCH_SIZE,
) -> Latency:
    """Events produced at `load.rate` per second; a timed event is seen when its run's
    lastEventAt reaches it."""
    rate = load.rate
    clear_graph(bench.driver)
    topic = f"bench-latency-{uuid.uuid4().hex[:8]}"
    create_topic(bench.stack.bootstrap, topic)
    group = f"bench-latency-{uuid.uuid4().hex[:6]}"
    env = bench.worker_env(
        group, topic, LINEAGE_BATCH_TIMEOUT_MS="50", LINEAGE_BATCH_SIZE=str(batch_size)
    )
    log = (bench.logs / "latency.log").open("ab")
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "lineage_stream", "worker"],
            env={**os.environ, **env, "LINEAGE_DATA_DIR": f"{env['LINEAGE_DATA_DIR']}/{index}"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=REPO,
        )
        for index in range(workers)
    ]
    whole = list(fleet(seed + 1, load.fleet_warm_up + int(rate * seconds), load.profile))
    fleet_warm_up, stream = whole[: load.fleet_warm_up], whole[load.fleet_warm_up :]
    sample_every = max(1, round(rate / TIMED_PER_S))
    sender = producer(bench.stack.bootstrap)
    sent_at: dict[tuple[str, str], float] = {}
    latencies: list[float] = []
    poll_interval = 0.05
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set() or sent_at:
            pending = list(sent_at)
            if pending:
                # Neo4j compares, so only the events newly seen come back: decoding every
                # pending run's time cost the harness a good part of a core once a queue built.
                records, _, _ = bench.driver.execute_query(
                    "UNWIND $pending AS pending "
                    "MATCH (p:Process {runId: pending[0]}) "
                    "WHERE p.lastEventAt >= datetime(pending[1]) "
                    "RETURN pending[0] AS runId, pending[1] AS at",
                    pending=pending,
                )
                now = time.monotonic()
                for record in records:
                    latencies.append(now - sent_at.pop((record["runId"], record["at"])))
            if stop.is_set() and time.monotonic() > deadline:
                break
            time.sleep(poll_interval)

    try:
        # One first event on every partition (or the fleet's warm-up), written and committed:
        # the worker then knows each partition's committed offset and Neo4j has planned every
        # statement before the timed events start.
        warm = (
            fleet_warm_up
            or list({event.run_id: event for event in fleet(seed + 2, 100)}.values())[:PARTITIONS]
        )
        if fleet_warm_up:
            say(f"latency: draining {len(warm)} events of the fleet first (untimed)")
            preload(bench.stack.bootstrap, topic, warm)
        else:
            for partition, event in enumerate(warm):
                sender.produce(topic, value=event.value, key=event.key, partition=partition)
            sender.flush(10)
        say(f"latency: waiting for {workers} worker(s) to join and commit {len(warm)} events")
        admin = AdminClient({"bootstrap.servers": bench.stack.bootstrap})
        wait_start = time.monotonic()
        # A worker commits offsets only after the graph write that covers them.
        while not (
            bench.offsets.committed(group, topic) >= len(warm)
            and group_members(admin, group) == workers
        ):
            allowed = 120 + len(warm) / 100
            if time.monotonic() - wait_start > allowed:
                raise SystemExit(
                    f"latency: the workers did not join and commit {len(warm)} events in "
                    f"{allowed:.0f} s; see {log.name}"
                )
            time.sleep(0.2)
        deadline = float("inf")
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        say(f"latency: offering {rate:.0f} events/s for {seconds:.0f} s")
        cpu = CpuWindow(processes, bench.services)
        cpu.begin()
        started = time.monotonic()
        for index, event in enumerate(stream):
            due = started + index / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            if index % sample_every == 0:
                sent_at[(event.run_id, event.event_time.isoformat())] = time.monotonic()
            sender.produce(
                topic,
                value=event.value,
                key=event.key,
                headers={"bench-sent-ns": str(time.time_ns()).encode()},
            )
            sender.poll(0)
        sender.flush(30)
        cpu_cores = cpu.cores()
        deadline = time.monotonic() + 60
        stop.set()
        poller.join()
    finally:
        stop_workers(processes)
        log.close()
    ordered = sorted(latencies)

    def quantile(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0

    result = Latency(
        offered_per_s=rate,
        seconds=seconds,
        workers=workers,
        batch_size=batch_size,
        fleet_warm_up=len(fleet_warm_up),
        sent=len(stream),
        tracked=len(range(0, len(stream), sample_every)),
        seen=len(ordered),
        p50_ms=round(quantile(0.5), 1),
        p90_ms=round(quantile(0.9), 1),
        p99_ms=round(quantile(0.99), 1),
        max_ms=round(1000 * ordered[-1], 1) if ordered else 0.0,
        poll_interval_ms=poll_interval * 1000,
        cpu_cores=cpu_cores,
    )
    say(f"latency: {result}")
    return result


# Main


def save_results(results: dict[str, Any], stamp: datetime, suffix: str = "") -> Path:
    """Write bench/results/<stamp><suffix>.json, headed by the date and the code measured."""
    header = {"date": stamp.isoformat(timespec="seconds"), "code": code_version()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{stamp:%Y-%m-%dT%H%M%S}{suffix}.json"
    path.write_text(json.dumps(header | results, indent=2, default=str) + "\n")
    return path


def code_version() -> str:
    """The commit of the lineage_stream measured (`-dirty` with uncommitted changes), which may
    be another checkout's than the bench's: results name the code they ran."""
    package = Path(lineage_stream.__file__).resolve().parent
    found = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=package, capture_output=True, text=True
    )
    return found.stdout.strip() if found.returncode == 0 else "unknown (not a git checkout)"


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", 10_000)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("BENCH_SEED", 7)))
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY", ",".join(CONTENDERS)))
    parser.add_argument("--naive-cap", type=float, default=120.0, help="seconds")
    parser.add_argument("--worker-cap", type=float, default=600.0, help="seconds")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument(
        "--latency-workers", default="1,2", help="worker counts to measure latency with, e.g. 1,2"
    )
    parser.add_argument(
        "--latency-fleet",
        choices=["fresh", "steady", "both"],
        default="both",
        help="time the fresh fleet's loads, the steady fleet's, or both",
    )
    parser.add_argument(
        "--latency-batch-size", type=int, default=BATCH_SIZE, help="the workers' batch size"
    )
    parser.add_argument("--open-runs", type=int, default=100_000, help="runs left open")
    parser.add_argument("--profile", action="store_true", help="pyinstrument the worker drains")
    parser.add_argument(
        "--small", action="store_true", help="drain the latency loads' small events instead"
    )
    args = parser.parse_args()
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = set(chosen) - set(CONTENDERS)
    if unknown:
        raise SystemExit(f"unknown contenders {sorted(unknown)}; choose from {CONTENDERS}")

    stack = load_stack().Config.from_env()
    with removing_created_topics(stack.bootstrap):
        measure(args, chosen, stack)


def measure(args: argparse.Namespace, chosen: list[str], stack: Any) -> None:
    stamp = datetime.now(UTC)
    logs = REPO / ".bench" / f"{stamp:%Y%m%dT%H%M%S}"
    logs.mkdir(parents=True, exist_ok=True)

    say(f"generating {args.events} events (seed {args.seed})")
    fleet_profile = SMALL_EVENTS if args.small else FleetProfile()
    events = list(fleet(args.seed, args.events, fleet_profile))
    sizes = sorted(len(e.value) for e in events)
    runs = len({e.run_id for e in events})
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    create_topic(stack.bootstrap, topic)
    say(f"preloading {len(events)} events ({sum(sizes) / 2**20:.0f} MiB, {runs} runs) to {topic}")
    preload(stack.bootstrap, topic, events)

    offsets = Offsets(stack.bootstrap)
    results: dict[str, Any] = {
        "machine": machine(),
        "stack": {
            "kafka_heap": stack.kafka_heap,
            "neo4j_heap": stack.neo4j_heap,
            "neo4j_pagecache": stack.neo4j_pagecache,
        },
        "workload": {
            "events": len(events),
            "runs": runs,
            "seed": args.seed,
            "partitions": PARTITIONS,
            "batch_size": BATCH_SIZE,
            "bytes_total": sum(sizes),
            "bytes_median": statistics.median(sizes),
            "bytes_p99": sizes[int(0.99 * (len(sizes) - 1))],
            "bytes_max": sizes[-1],
            "profile": asdict(fleet_profile),
        },
        "drains": {},
    }
    with GraphDatabase.driver(
        stack.bolt_uri, auth=("neo4j", stack.password), notifications_min_severity="OFF"
    ) as driver:
        bench = Bench(
            stack,
            driver,
            offsets,
            topic,
            events,
            runs,
            logs,
            args.naive_cap,
            args.worker_cap,
            args.profile,
        )
        runners: dict[str, Callable[[], Drain]] = {
            "worker": lambda: bench.worker("worker"),
            "warm": lambda: bench.worker("warm", warm=True),
            "repartition": lambda: bench.worker("repartition", repartition=True),
            "two-workers": lambda: bench.worker("two-workers", processes=2),
            "naive": bench.naive,
            "ceiling": bench.ceiling,
        }
        bench.warm_up()
        for name in chosen:
            if name in runners:
                results["drains"][name] = asdict(runners[name]())
        if "open-runs" in chosen:
            results["open_runs"] = asdict(bench.open_runs(args.open_runs))
        if "latency" in chosen:
            results["latency"] = {
                f"{name}, {workers} worker{'s' if workers > 1 else ''}": asdict(
                    latency(
                        bench,
                        load,
                        args.latency_seconds,
                        args.seed,
                        workers,
                        args.latency_batch_size,
                    )
                )
                for workers in (int(n) for n in args.latency_workers.split(","))
                for name, load in LATENCY_LOADS.items()
                if args.latency_fleet == "both"
                or (args.latency_fleet == "steady") == bool(load.fleet_warm_up)
            }
        clear_graph(driver)
    offsets.close()
    results["ratios"] = ratios(results["drains"])
    path = save_results(results, stamp)
    say(f"results: {path.relative_to(REPO)}  ratios: {results['ratios']}")


def ratios(drains: dict[str, Any]) -> dict[str, float]:
    rate = {name: d["events_per_s"] for name, d in drains.items() if d["events_per_s"]}
    found = {}
    if "worker" in rate and "naive" in rate:
        found["worker_vs_naive"] = round(rate["worker"] / rate["naive"], 2)
    if "worker" in rate and "ceiling" in rate:
        found["worker_vs_ceiling"] = round(rate["worker"] / rate["ceiling"], 3)
    if "repartition" in rate and "worker" in rate:
        found["repartition_vs_keyed"] = round(rate["repartition"] / rate["worker"], 3)
    if "warm" in rate and "worker" in rate:
        found["warm_vs_cold"] = round(rate["warm"] / rate["worker"], 3)
    if "ceiling" in rate and "naive" in rate:
        found["ceiling_vs_naive"] = round(rate["ceiling"] / rate["naive"], 2)
    return found


if __name__ == "__main__":
    main()
