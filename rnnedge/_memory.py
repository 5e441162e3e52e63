"""The runtime's memory rule: buffers at the C library's alignment, and refusing (with an
InputError naming the figure) a size this machine cannot hold, before allocating it.

Numpy and the standard library only (no compiled code)."""

from __future__ import annotations

import functools
import os

import numpy as np

from .errors import InputError

ALIGN = 64  # the alignment of every buffer the runtime hands to the C library


def aligned_bytes(nbytes: int, align: int = ALIGN) -> np.ndarray:
    """A zeroed uint8 array of nbytes whose data starts at a multiple of align."""
    raw = np.zeros(nbytes + align, dtype=np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start : start + nbytes]


def fmt_size(n: int) -> str:
    if n >= 10**9:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.1f} MB" if n >= 10**6 else f"{n} bytes"


@functools.lru_cache(maxsize=1)
def physical_memory() -> int | None:
    """Bytes of RAM of this machine, where the OS says (POSIX); None elsewhere. Asked once."""
    try:
        n = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    return n if n > 0 else None


def refuse_memory(what: str, needs: str, nbytes: int, failed: bool = False) -> InputError:
    """The InputError for `needs` (e.g. "batch 1000") taking nbytes that cannot be had."""
    why = "the allocation failed (MemoryError)" if failed else (
        f"more than this machine's {fmt_size(physical_memory() or 0)} of memory")
    return InputError(f"{what}: {needs} needs {fmt_size(nbytes)} of state, scratch and buffers; {why}")


def check_memory(what: str, needs: str, nbytes: int) -> None:
    """The sizing rule: refuse, before allocating, what exceeds the machine's physical memory
    (a numpy allocation that large may succeed under overcommit and then get the process
    killed when the C library writes it). A MemoryError below that is reported the same way."""
    limit = physical_memory()
    if limit is not None and nbytes > limit:
        raise refuse_memory(what, needs, nbytes)
