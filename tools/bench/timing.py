"""The benchmark's timing: per-step latency (each call timed on its own, by rnnedge.measure's
loop), the loop's own cost, sequence-mode calls repeated within a time budget (one engine, or
several interleaved call by call), and the Python around a step's C call (CPU time)."""

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


def time_interleaved(
    calls: dict[str, tuple[Callable[[Any], Any], Any]],
    budget_s: float,
    repeats: tuple[int, int] = (5, 1000),
) -> dict[str, dict[str, float]]:
    """time_calls for several engines at once, interleaved: one warm-up call each, then rounds in
    which every engine makes one timed call, as many rounds as fit in budget_s for all of them
    together (at least repeats[0], at most repeats[1]). A slow spell of the machine then hits
    every engine alike, which calls timed one engine after another do not."""
    clock = time.perf_counter_ns
    t0 = clock()
    for fn, arg in calls.values():
        fn(arg)
    first = max(clock() - t0, 1)
    n = int(min(max(budget_s * 1e9 / first, repeats[0]), repeats[1]))
    times = {name: np.empty(n, np.int64) for name in calls}
    order = list(calls.items())
    with no_gc():
        for i in range(n):
            for name, (fn, arg) in order:
                t0 = clock()
                fn(arg)
                times[name][i] = clock() - t0
    return {name: _stats(t) for name, t in times.items()}


def cffi_overhead(stream: Any, rounds: int = 30, n: int = 2000) -> dict[str, float]:
    """The Python around one step's C call, in CPU time (time.thread_time: the machine's other
    work does not count): Stream.step and Stream.step_into against the bare cffi call they make
    (rne_step, or rne_step_float for an integer model, on the same stream and buffers), timed in
    turn in `rounds` rounds of `n` calls each; the best round of each, in ns per call."""
    lib, ffi = stream._c.lib, stream._c.ffi
    x = np.zeros(stream._x_shape, stream._x_dtype)
    out = np.zeros(stream._y_shape, np.float32)
    xp, yp = ffi.from_buffer(stream._x_ctype, x), ffi.from_buffer("float[]", out)
    if stream._qargs is None or stream.model._ids:
        fn, args = lib.rne_step, (stream._cstream, xp, yp)
        if stream._qargs is not None:  # ids into an integer model: its int16 output
            args = (stream._cstream, xp, stream._qargs[2])
    else:
        s_in, xq, yq, s_out = stream._qargs
        fn, args = lib.rne_step_float, (stream._cstream, xp, s_in, xq, yq, s_out, yp)
    step, into = stream.step, stream.step_into
    loop = range(n)

    def bare() -> None:
        for _ in loop:
            fn(*args)

    def stepping() -> None:
        for _ in loop:
            step(x)

    def stepping_into() -> None:
        for _ in loop:
            into(x, out)

    best = {"cffi_ns": 1e18, "step_ns": 1e18, "step_into_ns": 1e18}
    with no_gc():
        for _ in range(rounds):
            for key, body in (("cffi_ns", bare), ("step_ns", stepping), ("step_into_ns", stepping_into)):
                t0 = time.thread_time_ns()
                body()
                best[key] = min(best[key], (time.thread_time_ns() - t0) / n)
    best["step_above_ns"] = best["step_ns"] - best["cffi_ns"]
    best["step_into_above_ns"] = best["step_into_ns"] - best["cffi_ns"]
    return best
