"""The worker's Python data path alone: parse, pair, plan rows, make statements. No services.

The worker parses and plans in a thread while its event loop drives Kafka and Neo4j, and
pyinstrument samples one thread only; so its drain profile (`bench.run --profile`) misses the
data path, which this profiles in-process on the same generated events. It also measures the
garbage-collector tuning (`lineage_stream.runtime`) as a lever: CPU seconds of the same
preparation with Python's default thresholds and tuned, alternated in fresh processes.

    python -m bench.data_path [--events N] [--rounds R] [--small]
    python -m bench.data_path --instructions [--events N] [--small]

Writes bench/results/<date>-data-path.json and <date>-data-path-profile.txt. CPU time on a
shared machine varies by a third between identical runs; `--instructions` counts the
instructions the preparation executes instead (valgrind's callgrind, about 50x slower, so use
a few thousand events): the same code gives the same count, so a lever's before and after can
be compared in different runs. Writes bench/results/<date>-data-path-instructions.json.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime

from bench.ceiling import prepare
from bench.generator import FleetProfile, fleet
from bench.run import BATCH_SIZE, RESULTS, SMALL_EVENTS, save_results
from lineage_stream.runtime import tune_garbage_collection


def _events(seed: int, count: int, small: bool) -> list[bytes]:
    return [event.value for event in fleet(seed, count, SMALL_EVENTS if small else FleetProfile())]


def measure(seed: int, count: int, small: bool, setting: str) -> float:
    """CPU seconds to prepare the events, in this process (`none`: generate them only)."""
    values = _events(seed, count, small)
    if setting == "none":
        return 0.0
    if setting == "tuned":
        tune_garbage_collection()
    started = time.process_time()
    prepare(values, BATCH_SIZE)
    return time.process_time() - started


def profile(seed: int, count: int, small: bool) -> str:
    from pyinstrument import Profiler

    values = _events(seed, count, small)
    tune_garbage_collection()
    profiler = Profiler()
    with profiler:
        prepare(values, BATCH_SIZE)
    return str(profiler.output_text(unicode=True, color=False, show_all=False))


def _measure_command(seed: int, count: int, small: bool, setting: str) -> list[str]:
    return [
        sys.executable, "-m", "bench.data_path", "--measure", setting,
        "--seed", str(seed), "--events", str(count), *(["--small"] if small else []),
    ]  # fmt: skip


def _in_fresh_process(seed: int, count: int, small: bool, tuned: bool) -> float:
    command = _measure_command(seed, count, small, "tuned" if tuned else "default")
    found = subprocess.run(command, check=True, capture_output=True, text=True)
    return float(found.stdout.strip().splitlines()[-1])


def _instructions(command: list[str]) -> int:
    """Instructions the command executes, counted by callgrind (string hashing fixed)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind: apt-get install valgrind")
    found = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        check=True, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    collected = re.search(r"Collected : (\d+)", found.stderr)
    if collected is None:
        raise SystemExit(f"callgrind reported no count:\n{found.stderr[-2000:]}")
    return int(collected.group(1))


def count_instructions(seed: int, count: int, small: bool) -> None:
    print(f"[data-path] counting instructions for {count} events (valgrind, minutes)", flush=True)
    generating = _instructions(_measure_command(seed, count, small, "none"))
    preparing = _instructions(_measure_command(seed, count, small, "tuned")) - generating
    results = {
        "events": count,
        "seed": seed,
        "small": small,
        "batch_size": BATCH_SIZE,
        "instructions_per_event": round(preparing / count),
    }
    path = save_results(results, datetime.now(UTC), "-data-path-instructions")
    print(f"[data-path] results: {path.relative_to(RESULTS.parent.parent)}  {results}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="the latency loads' small events")
    parser.add_argument("--instructions", action="store_true", help="count instructions instead")
    parser.add_argument("--measure", choices=["default", "tuned", "none"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(measure(args.seed, args.events, args.small, args.measure))
        return
    if args.instructions:
        count_instructions(args.seed, args.events, args.small)
        return
    cpu: dict[str, list[float]] = {"default": [], "tuned": []}
    for round_number in range(1, args.rounds + 1):
        for setting in cpu:
            seconds = _in_fresh_process(args.seed, args.events, args.small, setting == "tuned")
            cpu[setting].append(round(seconds, 2))
            print(f"[data-path] round {round_number}: {setting} gc {seconds:.1f} s CPU", flush=True)
    stamp = datetime.now(UTC)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = RESULTS / f"{stamp:%Y-%m-%dT%H%M%S}-data-path-profile.txt"
    report.write_text(profile(args.seed, args.events, args.small))
    median = {setting: statistics.median(values) for setting, values in cpu.items()}
    results = {
        "events": args.events,
        "seed": args.seed,
        "small": args.small,
        "batch_size": BATCH_SIZE,
        "cpu_seconds": cpu,
        "tuned_vs_default": round(median["tuned"] / median["default"], 3),
        "events_per_cpu_second_tuned": round(args.events / median["tuned"]),
        "profile": report.name,
    }
    path = save_results(results, stamp, "-data-path")
    print(f"[data-path] results: {path.relative_to(RESULTS.parent.parent)}  {results}")


if __name__ == "__main__":
    main()
