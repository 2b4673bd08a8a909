"""The benchmarks' stopwatch."""

from __future__ import annotations

import statistics
import time


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    """Median wall time in seconds of ``repeat`` calls of ``fn``, and the last call's result."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out
