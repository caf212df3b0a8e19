"""Where Neo4j's time goes: the ceiling's batches replayed one transaction each, every statement
and every commit timed, into an empty graph.

    python -m bench.statements --clear [--events N] [--small] [--warm-up N]

`--warm-up N` first replays the fleet's N events before those (untimed): a fleet whose jobs have
run before, as `bench.run`'s steady-fleet latency loads.

EMPTIES the local stack's Neo4j (`make stack-up`), hence the required --clear. Writes
bench/results/<date>-statements.json: per statement, seconds, rows and microseconds a row.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime

from neo4j import GraphDatabase

from bench.ceiling import prepare, replay
from bench.generator import FleetProfile, fleet
from bench.run import BATCH_SIZE, SMALL_EVENTS, clear_graph, load_stack, save_results
from lineage_stream import cypher

STATEMENT_NAMES = {text: name for name, text in vars(cypher).items() if name.isupper()}
COMMIT = "commit"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--small", action="store_true", help="the latency loads' small events")
    parser.add_argument("--clear", action="store_true", help="required: empties the graph")
    parser.add_argument("--warm-up", type=int, default=0, help="events replayed untimed first")
    args = parser.parse_args()
    if not args.clear:
        raise SystemExit("bench.statements empties the graph it writes to: pass --clear")
    if args.warm_up % BATCH_SIZE:
        raise SystemExit(f"--warm-up must be a multiple of the batch size, {BATCH_SIZE}")

    profile = SMALL_EVENTS if args.small else FleetProfile()
    total_events = args.warm_up + args.events
    print(f"[statements] preparing {total_events} events' batches (untimed)", flush=True)
    everything = prepare([e.value for e in fleet(args.seed, total_events, profile)], BATCH_SIZE)
    warm_up_batches = args.warm_up // BATCH_SIZE
    warm_up, batches = everything[:warm_up_batches], everything[warm_up_batches:]
    stack = load_stack().Config.from_env()
    seconds: defaultdict[str, float] = defaultdict(float)
    rows: Counter[str] = Counter()
    auth = ("neo4j", stack.password)
    with GraphDatabase.driver(stack.bolt_uri, auth=auth) as driver:
        clear_graph(driver)
        if warm_up:
            print(f"[statements] replaying {args.warm_up} events first (untimed)", flush=True)
            replay(driver, warm_up)
        started = time.perf_counter()
        with driver.session() as session:
            for number, batch in enumerate(batches, start=1):
                with session.begin_transaction() as tx:
                    for statement, parameters in batch.statements:
                        name = STATEMENT_NAMES[statement]
                        began = time.perf_counter()
                        tx.run(statement, parameters).consume()
                        seconds[name] += time.perf_counter() - began
                        rows[name] += len(next(iter(parameters.values())))
                    began = time.perf_counter()
                    tx.commit()
                    seconds[COMMIT] += time.perf_counter() - began
                print(f"[statements] batch {number}/{len(batches)}", end="\r", flush=True)
        total = time.perf_counter() - started
    print()
    breakdown = {
        name: {
            "seconds": round(spent, 2),
            "share": round(spent / total, 3),
            "rows": rows[name],
            "us_per_row": round(spent / rows[name] * 1e6, 1) if rows[name] else None,
        }
        for name, spent in sorted(seconds.items(), key=lambda item: -item[1])
    }
    results = {
        "events": args.events,
        "seed": args.seed,
        "small": args.small,
        "warm_up": args.warm_up,
        "batches": len(batches),
        "seconds": round(total, 2),
        "events_per_s": round(args.events / total),
        "statements": breakdown,
    }
    for name, entry in breakdown.items():
        print(f"[statements] {name:22s} {entry['seconds']:6.2f} s  {entry['share']:6.1%}")
    path = save_results(results, datetime.now(UTC), "-statements")
    print(f"[statements] {args.events / total:.0f} events/s; results: {path.name}")


if __name__ == "__main__":
    main()
