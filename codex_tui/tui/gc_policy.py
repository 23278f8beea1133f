"""The garbage-collector policy of the running app, shared with the benchmarks that measure it."""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 20_000
"""Young-object collections happen every 20,000 allocations instead of 700: streaming output
allocates fast, and frequent young collections add up to visible key latency."""


def tune_gc_for_streaming() -> tuple[int, int, int]:
    """Freeze start-up objects out of the collector's view and collect young objects less often.

    Returns the previous thresholds (for `restore_gc`).
    """
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, 20, 20)
    return previous


def restore_gc(previous: tuple[int, int, int]) -> None:
    """Undo `tune_gc_for_streaming` (benchmarks compare both policies in one process)."""
    gc.set_threshold(*previous)
    gc.unfreeze()
