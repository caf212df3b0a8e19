"""`make run`: the local stack, the worker, the bundled Spark demo events, and a look at the graph.

The worker stays in the foreground (its log is .stack/logs/worker.log); Ctrl-C stops it.
The stack keeps running afterwards: `make stack-down` stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from neo4j import GraphDatabase
from neo4j.time import DateTime

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import stack  # noqa: E402  (a sibling script, not a package)

DEMO_RUNS = 14
IMPACT_QUERY = """\
MATCH (source:Dataset {namespace: 'hive://dataproc-producer-test-m:9083', name: 'default.t1'})
MATCH path = (source)-[:INPUT_TO|OUTPUT_TO*1..10]->(downstream:Dataset)
RETURN DISTINCT downstream.namespace AS namespace, downstream.name AS name,
       length(path) / 2 AS hops"""
FAILURES_QUERY = """\
MATCH (j:Job)-[:HAS_RUN]->(p:Process)
WHERE p.state IN ['FAIL', 'ABORT', 'ABANDONED']
OPTIONAL MATCH (p)-[:OUTPUT_TO]->(d:Dataset)
RETURN j.name AS job, p.state AS state, p.endedAt AS endedAt,
       left(p.errorMessage, 60) AS error, collect(d.name) AS outputs"""


def _readable(value: object) -> object:
    return value.iso_format() if isinstance(value, DateTime) else value


def main() -> int:
    config = stack.Config.from_env()
    try:
        stack.up(config, list(stack.SERVICES))
    except stack.StackError as exc:
        print(f"[run] error: {exc}", file=sys.stderr)
        return 2
    env = {
        **os.environ,
        "LINEAGE_KAFKA_BOOTSTRAP_SERVERS": config.bootstrap,
        "LINEAGE_NEO4J_URI": config.bolt_uri,
        "LINEAGE_NEO4J_PASSWORD": config.password,
        "LINEAGE_TOPIC": os.environ.get("LINEAGE_TOPIC", "openlineage"),
        "LINEAGE_DATA_DIR": str(config.root / "worker"),
    }
    cli = [sys.executable, "-m", "lineage_stream"]
    log_path = config.root / "logs" / "worker.log"
    with log_path.open("ab") as log:
        worker = subprocess.Popen([*cli, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
    print(f"[run] worker started (pid {worker.pid}), log {log_path}")
    subprocess.run([*cli, "publish", "--demo"], env=env, check=True)

    auth = ("neo4j", config.password)
    with GraphDatabase.driver(config.bolt_uri, auth=auth, notifications_min_severity="OFF") as db:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            records, _, _ = db.execute_query("MATCH (p:Process) RETURN count(p) AS n")
            if records[0]["n"] >= DEMO_RUNS:
                break
            time.sleep(0.5)
        if worker.poll() is not None:
            print(f"[run] the worker exited with {worker.returncode}; see {log_path}")
            return 1
        print(
            f"\nThe lineage graph is in Neo4j at {config.bolt_uri} "
            f"(user neo4j, password {config.password})."
        )
        print("Open it with Neo4j Browser or Desktop, cypher-shell, or any Bolt driver.\n")
        for title, query in (
            ("What is downstream of hive default.t1?", IMPACT_QUERY),
            ("Which runs failed or were abandoned, and what did they write?", FAILURES_QUERY),
        ):
            print(f"-- {title}\n{query}")
            records, _, _ = db.execute_query(query)
            for record in records:
                print("   ", {key: _readable(value) for key, value in record.items()})
            print()
    print("[run] worker running; Ctrl-C stops it (the stack stays up: `make stack-down`).")
    try:
        return worker.wait()
    except KeyboardInterrupt:
        worker.send_signal(signal.SIGTERM)
        return worker.wait(60)


if __name__ == "__main__":
    sys.exit(main())
