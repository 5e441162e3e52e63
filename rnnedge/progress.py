"""Progress bars for long work (calibration, the per-layer accuracy checks, the demo, the
benchmark): on a terminal's stderr only, tqdm's when it is installed (the `convert` extra), else a
plain one; off under --quiet (`quiet_progress`). Stdlib only at import, so that every layer of the
package (the quantizer included) may use it."""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import shutil
import sys
import time
from typing import Any, Iterator, TextIO


def _have_tqdm() -> bool:
    try:
        return importlib.util.find_spec("tqdm") is not None
    except (ImportError, ValueError):
        return False


# Whether Progress bars may draw: `rnnedge --quiet` / `convert --quiet` (and `quiet_progress()`)
# turn them off for the work that follows; a bar never draws when stderr is not a terminal.
PROGRESS_ALLOWED: contextvars.ContextVar[bool] = contextvars.ContextVar("rnnedge_progress", default=True)


@contextlib.contextmanager
def quiet_progress() -> Iterator[None]:
    """No progress bar inside the block (what --quiet does)."""
    token = PROGRESS_ALLOWED.set(False)
    try:
        yield
    finally:
        PROGRESS_ALLOWED.reset(token)


class Progress:
    """A progress bar on stderr for long work (calibration, the per-layer accuracy checks, the
    demo, the benchmark): tqdm's where it is installed (it comes with the `convert` extra; the
    runtime does not need it), else a plain one redrawn in place. Only on a terminal: when the
    stream is not one (a log, a pipe, a test), when `enabled` is false, or under --quiet
    (`quiet_progress`), nothing at all is written. Draws nothing during its first `delay`
    seconds, so quick work shows no bar. Closing it erases the bar; use it as a context manager
    so that an error erases it too."""

    def __init__(
        self,
        total: int,
        label: str,
        stream: TextIO | None = None,
        delay: float = 1.0,
        enabled: bool = True,
        plain: bool = False,
    ) -> None:
        self.total, self.label, self.done = max(total, 1), label, 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and PROGRESS_ALLOWED.get()
        self.tty = self.enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start, self.delay, self.drawn, self._last, self._width = (
            time.monotonic(),
            delay,
            False,
            0.0,
            0,
        )
        self._tqdm: Any = None
        if self.tty and not plain and _have_tqdm():
            from tqdm import tqdm

            size = shutil.get_terminal_size()  # a terminal that reports no size (some ptys): 80 x 24
            self._tqdm = tqdm(
                total=self.total, desc=label, file=self.stream, delay=delay, leave=False,
                ncols=size.columns, nrows=size.lines,
                bar_format="{desc} {bar} {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}",
            )

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, step: str = "", advance: int = 1) -> None:
        """Advance by `advance` items; `step` says what is being done now."""
        self.done = min(self.done + advance, self.total)
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(step, refresh=False)
            self._tqdm.update(advance)
            return
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
        """Erase the bar (the caller prints its results, and the time if it wants to)."""
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        elif self.drawn:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self.drawn = False
