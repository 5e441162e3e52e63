"""Measuring on this host, for `rnnedge bench` and `rnnedge demo` (the benchmark in tools/bench
builds on it): the per-call timing loop, `Stream.step`'s latency, a progress line for long runs,
what machine this is, and whether an optional package is installed. Stdlib and numpy only.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import sys
import time
from typing import Any, Callable, Iterator, Sequence, TextIO

import numpy as np

from ._views import Layout

WARMUP = 200  # untimed steps before `step_latency` times any


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """GC off for the block: a collection inside a timed call is not its cost."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def time_each(step: Callable[[Any], Any], inputs: Sequence, warmup: int) -> np.ndarray:
    """Call step(x) for each input, timing every call on its own (one clock read between calls);
    the first `warmup` calls untimed. Returns the nanoseconds of each timed call."""
    for x in inputs[:warmup]:
        step(x)
    timed = inputs[warmup:]
    clock = time.perf_counter_ns
    stamps = [0] * (len(timed) + 1)
    with no_gc():
        stamps[0] = clock()
        for i, x in enumerate(timed, 1):
            step(x)
            stamps[i] = clock()
    return np.diff(np.array(stamps, dtype=np.int64))


def step_latency(model, steps: int = 2000, warmup: int = WARMUP, seed: int = 0) -> dict[str, float]:
    """`Stream.step` of `model` (an rnnedge.Model) at batch 1 on standard-normal inputs, one call
    at a time: median and p90 microseconds per step, and steps per second (the timed steps over
    their total time). Raises NotStreamableError for a model that cannot be stepped."""
    stream = model.stream(1)
    shape = tuple(Layout.of(model.input_spec).without("T").sizes(model.in_features, 1))
    xs = np.random.default_rng(seed).standard_normal((warmup + steps, *shape)).astype(np.float32)
    us = time_each(stream.step, list(xs), warmup) / 1e3
    return {
        "median_us": float(np.median(us)),
        "p90_us": float(np.percentile(us, 90)),
        "steps_per_s": float(len(us) / (us.sum() / 1e6)) if us.sum() > 0 else float("inf"),
        "steps": int(len(us)),
        "warmup": int(warmup),
    }


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo where there is one)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    return cpu


def machine() -> dict[str, Any]:
    """The machine in a line's worth: CPU, architecture, cores, Python."""
    return {
        "cpu": cpu_name(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def module_available(name: str) -> bool:
    """Whether `name` can be imported (without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class Progress:
    """A plain-text progress bar on stderr, redrawn in place on a terminal; elsewhere (a log, a
    pipe) one line when it finishes. Draws nothing during its first `delay` seconds."""

    def __init__(
        self,
        total: int,
        label: str,
        stream: TextIO | None = None,
        delay: float = 1.0,
        enabled: bool = True,
    ) -> None:
        self.total, self.label, self.done = max(total, 1), label, 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start, self.delay, self.drawn, self._last, self._width = (
            time.monotonic(),
            delay,
            False,
            0.0,
            0,
        )

    def update(self, step: str = "", advance: int = 1) -> None:
        self.done = min(self.done + advance, self.total)
        now = time.monotonic()
        due = now - self._last >= 0.1 or self.done == self.total
        if self.tty and due and now - self.start >= self.delay:
            filled = 24 * self.done // self.total
            bar = "#" * filled + "." * (24 - filled)
            text = f"\r{self.label} [{bar}] {self.done}/{self.total} {step}"[:120]
            self.stream.write(text.ljust(self._width))  # blank out a longer previous line
            self.stream.flush()
            self._width, self.drawn, self._last = len(text), True, now

    def close(self) -> None:
        elapsed = time.monotonic() - self.start
        if self.drawn:
            self.stream.write("\r" + " " * self._width + "\r")
        if self.enabled and elapsed >= self.delay:
            self.stream.write(f"{self.label}: done in {elapsed:.1f} s\n")
        self.stream.flush()
