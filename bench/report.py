"""Turn a `bench.run` results file into the tables and the plot of docs/performance.md.

    python -m bench.report bench/results/<stamp>.json [--plot docs/images/throughput.png]

Prints the Markdown tables; writes the throughput chart when asked.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

LABELS = {
    "worker": "lineage-stream worker",
    "warm": "worker, graph warm with 1M nodes",
    "repartition": "worker, repartition by runId",
    "two-workers": "two workers, one group",
    "naive": "naive consumer",
    "ceiling": "ceiling (pre-built UNWIND batches)",
}


def drains_table(results: dict[str, Any]) -> str:
    lines = [
        "| contender | events/s | runs/s | vs naive | vs ceiling | drained | wall s "
        "| peak RSS MiB | CPU cores (own) | Neo4j cores | Kafka cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    drains = results["drains"]
    naive = drains.get("naive", {}).get("events_per_s") or 0
    ceiling = drains.get("ceiling", {}).get("events_per_s") or 0
    for name, drain in drains.items():
        rate = drain["events_per_s"]
        services = drain["service_cpu_cores"]
        lines.append(
            f"| {LABELS.get(name, name)} | {rate:.0f} | {drain['runs_per_s']:.0f} "
            f"| {rate / naive if naive else 0:.1f}x | {rate / ceiling if ceiling else 0:.2f} "
            f"| {drain['processed']}/{drain['events']} | {drain['wall_s']:.0f} "
            f"| {drain['peak_rss_mib']:.0f} | {drain['cpu_cores']:.2f} "
            f"| {services.get('neo4j', 0):.2f} | {services.get('kafka', 0):.2f} |"
        )
    return "\n".join(lines)


def latency_table(results: dict[str, Any]) -> str:
    lines = [
        "| offered load | workers | events sent | timed | seen in Neo4j "
        "| p50 ms | p90 ms | p99 ms | max ms "
        "| cores: workers, Neo4j, Kafka, harness, all, stolen |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for load, row in results.get("latency", {}).items():
        # Runs before the sampling timed every event with one worker.
        workers, timed = row.get("workers", 1), row.get("tracked", row["sent"])
        offered = load.removesuffix(f", {workers} workers").removesuffix(", 1 worker")
        # Runs before 2026-12-07's ninth session did not measure cores.
        cores = row.get("cpu_cores") or {}
        used = ", ".join(
            f"{cores[part]:.2f}" if part in cores else "-"
            for part in ("workers", "neo4j", "kafka", "harness", "machine", "steal")
        )
        lines.append(
            f"| {offered} | {workers} | {row['sent']} | {timed} | {row['seen']} "
            f"| {row['p50_ms']:.0f} | {row['p90_ms']:.0f} | {row['p99_ms']:.0f} "
            f"| {row['max_ms']:.0f} | {used} |"
        )
    return "\n".join(lines)


def memory_table(results: dict[str, Any]) -> str:
    row = results["open_runs"]
    return "\n".join(
        [
            "| open runs held (RocksDB store) | drained | events/s | peak RSS MiB |",
            "|---|---|---|---|",
            f"| {row['events']:,} | {row['processed']}/{row['events']} "
            f"| {row['events_per_s']:.0f} | {row['peak_rss_mib']:.0f} |",
        ]
    )


def plot(results: dict[str, Any], path: Path) -> None:
    # Here, not at the top: the tables need no matplotlib (the bench extra), and the unit tests
    # read them without it.
    from matplotlib.figure import Figure

    drains = results["drains"]
    names = list(drains)
    rates = [drains[name]["events_per_s"] for name in names]
    figure = Figure(figsize=(8, 0.6 * len(names) + 1.2))
    axis = figure.subplots()
    bars = axis.barh([LABELS.get(name, name) for name in names], rates, color="#4C72B0")
    axis.bar_label(bars, labels=[f"{rate:.0f}" for rate in rates], padding=3)
    axis.invert_yaxis()
    axis.set_xlabel("events/s, steady drain of the same preloaded topic (higher is better)")
    workload = results["workload"]
    axis.set_title(
        f"{workload['events']:,} Spark events ({workload['runs']:,} runs), "
        f"{results['machine']['cpus']} cores shared with Kafka and Neo4j",
        fontsize=10,
    )
    axis.margins(x=0.15)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--plot", type=Path, help="write the throughput chart (PNG) here")
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    print(drains_table(results))
    if results.get("latency"):
        print()
        print(latency_table(results))
    if results.get("open_runs"):
        print()
        print(memory_table(results))
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
