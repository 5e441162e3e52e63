"""Measuring on this host, for `rnnedge bench` and `rnnedge demo` (the benchmark in tools/bench
builds on it): the per-call timing loop, `Stream.step`'s latency, a progress line for long runs,
what machine this is, whether an optional package is installed, and the plot of `rnnedge bench
--plot` (progress bars: rnnedge.progress). Stdlib and numpy only at import (matplotlib, an
optional extra, when plotting).
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


def step_times(model, steps: int = 2000, warmup: int = WARMUP, seed: int = 0) -> np.ndarray:
    """`Stream.step` of `model` (an rnnedge.Model) at batch 1 on standard-normal inputs, one call
    at a time, after `warmup` untimed calls: the microseconds of each of the `steps` timed calls.
    Raises NotStreamableError for a model that cannot be stepped."""
    stream = model.stream(1)
    shape = tuple(Layout.of(model.input_spec).without("T").sizes(model.in_features, 1))
    xs = np.random.default_rng(seed).standard_normal((warmup + steps, *shape)).astype(np.float32)
    return time_each(stream.step, list(xs), warmup) / 1e3


def latency_summary(us: np.ndarray, warmup: int = WARMUP) -> dict[str, float]:
    """Median and p90 microseconds per step of `step_times`' figures, and steps per second (the
    timed steps over their total time)."""
    return {
        "median_us": float(np.median(us)),
        "p90_us": float(np.percentile(us, 90)),
        "steps_per_s": float(len(us) / (us.sum() / 1e6)) if us.sum() > 0 else float("inf"),
        "steps": int(len(us)),
        "warmup": int(warmup),
    }


def step_latency(model, steps: int = 2000, warmup: int = WARMUP, seed: int = 0) -> dict[str, float]:
    """`latency_summary` of `step_times`."""
    return latency_summary(step_times(model, steps, warmup, seed), warmup)


PLOT_MISSING = "--plot needs matplotlib, an optional extra: pip install 'rnnedge[plot]'"


def plot_step_times(us: np.ndarray, path: str, title: str) -> None:
    """Write a PNG of `step_times`' figures to `path`: each timed step in call order (left) and
    their histogram (right), the median and p90 marked on both. InputError naming the extra if
    matplotlib is not installed; OSError if the file cannot be written."""
    from .errors import InputError

    if not module_available("matplotlib"):
        raise InputError(PLOT_MISSING)
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    med, p90 = float(np.median(us)), float(np.percentile(us, 90))
    top = float(np.percentile(us, 99.5)) * 1.2  # the view; the few slower calls are counted below
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [2, 1]})
    left.plot(np.arange(len(us)), np.minimum(us, top), ".", markersize=2, color="tab:blue")
    right.hist(np.minimum(us, top), bins=60, range=(0, top), color="tab:blue")
    for ax, line in ((left, left.axhline), (right, right.axvline)):
        line(med, color="black", linewidth=1, label=f"median {med:.2f} us")
        line(p90, color="tab:red", linewidth=1, linestyle="--", label=f"p90 {p90:.2f} us")
    slow = int((us > top).sum())
    left.set(xlabel="timed step (call order)", ylabel="us per step", ylim=(0, top))
    left.set_title(f"each Stream.step call ({slow} slower than {top:.1f} us drawn at the top)"
                   if slow else "each Stream.step call", fontsize=9)
    right.set(xlabel="us per step", ylabel="steps")
    right.set_title("how many steps took how long", fontsize=9)
    left.legend(loc="upper right", fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo where there is one, else what `platform` says:
    platform.processor() runs `uname -p` on Linux, so it is the fallback only)."""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    return cpu or platform.processor() or platform.machine()


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
