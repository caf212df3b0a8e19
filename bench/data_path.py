"""The worker's Python data path alone: parse, pair, plan rows, make statements. No services.

The worker parses and plans in a thread while its event loop drives Kafka and Neo4j, and
pyinstrument samples one thread only; so its drain profile (`bench.run --profile`) misses the
data path, which this profiles in-process on the same generated events. It also measures the
garbage-collector tuning (`lineage_stream.runtime`) as a lever: CPU seconds of the same
preparation with Python's default thresholds and tuned, alternated in fresh processes.

    python -m bench.data_path [--events N] [--rounds R]

Writes bench/results/<date>-data-path.json and <date>-data-path-profile.txt.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime

from bench.ceiling import prepare
from bench.generator import fleet
from bench.run import BATCH_SIZE, RESULTS
from lineage_stream.runtime import tune_garbage_collection


def _events(seed: int, count: int) -> list[bytes]:
    return [event.value for event in fleet(seed, count)]


def measure(seed: int, count: int, tuned: bool) -> float:
    """CPU seconds to prepare the events, in this process."""
    values = _events(seed, count)
    if tuned:
        tune_garbage_collection()
    started = time.process_time()
    prepare(values, BATCH_SIZE)
    return time.process_time() - started


def profile(seed: int, count: int) -> str:
    from pyinstrument import Profiler

    values = _events(seed, count)
    tune_garbage_collection()
    profiler = Profiler()
    with profiler:
        prepare(values, BATCH_SIZE)
    return str(profiler.output_text(unicode=True, color=False, show_all=False))


def _in_fresh_process(seed: int, count: int, tuned: bool) -> float:
    found = subprocess.run(
        [sys.executable, "-m", "bench.data_path", "--measure", "tuned" if tuned else "default",
         "--seed", str(seed), "--events", str(count)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(found.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--measure", choices=["default", "tuned"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(measure(args.seed, args.events, args.measure == "tuned"))
        return
    cpu: dict[str, list[float]] = {"default": [], "tuned": []}
    for round_number in range(1, args.rounds + 1):
        for setting in cpu:
            seconds = _in_fresh_process(args.seed, args.events, setting == "tuned")
            cpu[setting].append(round(seconds, 2))
            print(f"[data-path] round {round_number}: {setting} gc {seconds:.1f} s CPU", flush=True)
    stamp = datetime.now(UTC)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = RESULTS / f"{stamp:%Y-%m-%dT%H%M%S}-data-path-profile.txt"
    report.write_text(profile(args.seed, args.events))
    median = {setting: statistics.median(values) for setting, values in cpu.items()}
    results = {
        "date": stamp.isoformat(timespec="seconds"),
        "events": args.events,
        "seed": args.seed,
        "batch_size": BATCH_SIZE,
        "cpu_seconds": cpu,
        "tuned_vs_default": round(median["tuned"] / median["default"], 3),
        "events_per_cpu_second_tuned": round(args.events / median["tuned"]),
        "profile": report.name,
    }
    path = RESULTS / f"{stamp:%Y-%m-%dT%H%M%S}-data-path.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"[data-path] results: {path.relative_to(RESULTS.parent.parent)}  {results}")


if __name__ == "__main__":
    main()
