"""The worker's Python data path alone: parse, pair, plan rows, make statements. No services.

The worker parses and plans in a thread while its event loop drives Kafka and Neo4j, and
pyinstrument samples one thread only; so its drain profile (`bench.run --profile`) misses the
data path, which this profiles in-process on the same generated events. It also measures the
garbage-collector tuning (`lineage_stream.runtime`) as a lever: CPU seconds of the same
preparation with Python's default thresholds and tuned, alternated in fresh processes.

    python -m bench.data_path [--events N] [--rounds R] [--small] [--warm-up N]
    python -m bench.data_path --instructions [--events N] [--small] [--warm-up N]

Writes bench/results/<date>-data-path.json and <date>-data-path-profile.txt. CPU time on a
shared machine varies by a third between identical runs; `--instructions` counts the
instructions the preparation executes instead (valgrind's callgrind, about 50x slower, so use
a few thousand events): the same code gives the same count, so a lever's before and after can
be compared in different runs. Writes bench/results/<date>-data-path-instructions.json.

`--warm-up N` first prepares N events of the same fleet untimed: the timed events are then those
of a fleet whose jobs have run before (their column lineage written), as a long-running worker
sees them, rather than a fleet's first minutes.
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
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.ceiling import Preparer
from bench.generator import FleetProfile, fleet
from bench.run import BATCH_SIZE, RESULTS, SMALL_EVENTS, save_results
from lineage_stream.runtime import tune_garbage_collection


@dataclass(frozen=True)
class Workload:
    seed: int
    events: int
    small: bool
    warm_up: int

    def values(self) -> tuple[list[bytes], list[bytes]]:
        """The warm-up's events and the timed ones."""
        profile = SMALL_EVENTS if self.small else FleetProfile()
        values = [event.value for event in fleet(self.seed, self.warm_up + self.events, profile)]
        return values[: self.warm_up], values[self.warm_up :]

    def arguments(self) -> list[str]:
        return [
            "--seed", str(self.seed), "--events", str(self.events),
            "--warm-up", str(self.warm_up), *(["--small"] if self.small else []),
        ]  # fmt: skip


def measure(workload: Workload, setting: str) -> float:
    """CPU seconds to prepare the events, in this process (`none`: generate them and prepare
    the warm-up only, under the tuned collector as `tuned` does, so its instructions subtract)."""
    warm_up, timed = workload.values()
    if setting != "default":
        tune_garbage_collection()
    preparer = Preparer(BATCH_SIZE)
    preparer.prepare(warm_up)
    if setting == "none":
        return 0.0
    started = time.process_time()
    preparer.prepare(timed)
    return time.process_time() - started


def profile(workload: Workload) -> str:
    from pyinstrument import Profiler

    warm_up, timed = workload.values()
    tune_garbage_collection()
    preparer = Preparer(BATCH_SIZE)
    preparer.prepare(warm_up)
    profiler = Profiler()
    with profiler:
        preparer.prepare(timed)
    return str(profiler.output_text(unicode=True, color=False, show_all=False))


def _measure_command(workload: Workload, setting: str) -> list[str]:
    return [sys.executable, "-m", "bench.data_path", "--measure", setting, *workload.arguments()]


def _in_fresh_process(workload: Workload, tuned: bool) -> float:
    command = _measure_command(workload, "tuned" if tuned else "default")
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


def count_instructions(workload: Workload) -> None:
    print(
        f"[data-path] counting instructions for {workload.events} events after a warm-up of "
        f"{workload.warm_up} (valgrind, minutes)",
        flush=True,
    )
    generating = _instructions(_measure_command(workload, "none"))
    preparing = _instructions(_measure_command(workload, "tuned")) - generating
    results = {
        **_described(workload),
        "instructions_per_event": round(preparing / workload.events),
    }
    path = save_results(results, datetime.now(UTC), "-data-path-instructions")
    print(f"[data-path] results: {path.relative_to(RESULTS.parent.parent)}  {results}")


def _described(workload: Workload) -> dict[str, object]:
    return {
        "events": workload.events,
        "warm_up": workload.warm_up,
        "seed": workload.seed,
        "small": workload.small,
        "batch_size": BATCH_SIZE,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="the latency loads' small events")
    parser.add_argument("--warm-up", type=int, default=0, help="events prepared untimed first")
    parser.add_argument("--instructions", action="store_true", help="count instructions instead")
    parser.add_argument("--measure", choices=["default", "tuned", "none"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    workload = Workload(args.seed, args.events, args.small, args.warm_up)
    if args.measure:
        print(measure(workload, args.measure))
        return
    if args.instructions:
        count_instructions(workload)
        return
    cpu: dict[str, list[float]] = {"default": [], "tuned": []}
    for round_number in range(1, args.rounds + 1):
        for setting in cpu:
            seconds = _in_fresh_process(workload, setting == "tuned")
            cpu[setting].append(round(seconds, 2))
            print(f"[data-path] round {round_number}: {setting} gc {seconds:.1f} s CPU", flush=True)
    stamp = datetime.now(UTC)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = RESULTS / f"{stamp:%Y-%m-%dT%H%M%S}-data-path-profile.txt"
    report.write_text(profile(workload))
    median = {setting: statistics.median(values) for setting, values in cpu.items()}
    results = {
        **_described(workload),
        "cpu_seconds": cpu,
        "tuned_vs_default": round(median["tuned"] / median["default"], 3),
        "events_per_cpu_second_tuned": round(args.events / median["tuned"]),
        "profile": report.name,
    }
    path = save_results(results, stamp, "-data-path")
    print(f"[data-path] results: {path.relative_to(RESULTS.parent.parent)}  {results}")


if __name__ == "__main__":
    main()
