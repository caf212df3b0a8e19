"""Process-wide tuning for the long-running commands (worker, replay)."""

from __future__ import annotations

import gc


def tune_garbage_collection() -> None:
    """Collect young objects every 50,000 allocations instead of 700, after freezing what
    start-up made.

    Parsing a batch allocates millions of dicts and strings, all acyclic and freed with the
    batch; but a batch lives long enough to be promoted to the older generations, which are then
    walked again and again. With the defaults, collecting took 40% of the CPU of parsing and
    building 10,000 fleet events (24.8 s against 14.0 s; `docs/performance.md`).
    """
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)
