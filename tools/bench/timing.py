"""The benchmark's timing: per-step latency (each call timed on its own, by rnnedge.measure's
loop), the loop's own cost, and sequence-mode calls repeated within a time budget."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from rnnedge.measure import no_gc, time_each


def _stats(ns: np.ndarray) -> dict[str, float]:
    us = ns / 1e3
    return {
        "median_us": float(np.median(us)),
        "p99_us": float(np.percentile(us, 99)),
        "min_us": float(us.min()),
        "mean_us": float(us.mean()),
        "n": int(len(us)),
    }


def time_steps(step: Callable[[Any], Any], inputs: Sequence, warmup: int) -> dict[str, float]:
    """Call step(x) for each input, timing every call on its own; `warmup` untimed calls first."""
    return _stats(time_each(step, inputs, warmup))


def harness_overhead(n: int = 2000) -> dict[str, float]:
    """The timing loop's own cost per step (a no-op builtin as the step)."""
    return time_steps(id, [None] * (n + 100), 100)


def time_calls(
    fn: Callable[[Any], Any], arg: Any, budget_s: float, repeats: tuple[int, int] = (5, 50)
) -> dict[str, float]:
    """Median of repeated fn(arg) calls: one warm-up call, then as many as fit in budget_s
    (at least repeats[0], at most repeats[1])."""
    clock = time.perf_counter_ns
    t0 = clock()
    fn(arg)
    first = max(clock() - t0, 1)
    n = int(min(max(budget_s * 1e9 / first, repeats[0]), repeats[1]))
    times = np.empty(n, np.int64)
    with no_gc():
        for i in range(n):
            t0 = clock()
            fn(arg)
            times[i] = clock() - t0
    return _stats(times)
