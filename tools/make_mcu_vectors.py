#!/usr/bin/env python3
"""Embed the C library's test vectors (tests/data/c) in a C file for a microcontroller test.

    python3 tools/make_mcu_vectors.py -o vectors.c [--data tests/data/c] [--arena BYTES]
                                      [--flash BYTES] [--only GLOB,...] [--list]

A microcontroller has no filesystem, so tools/cortexm/test_mcu.c gets its cases compiled in: this
writes `const mcu_case mcu_cases[]` (tools/cortexm/mcu_case.h) with every case's blob as a byte
array aligned to the blob's own alignment, its input and expected output as float (exact hex-float
literals) or int16 arrays, and its initial and final state bytes. Float cases come from
DATA/<case>.*, integer cases from DATA/int/<case>.* (with their .final.npy states, compared
exactly), long integer cases from DATA/int/<case>.long.npy (the input generator's seed and the
reference's CRC-32s, no arrays).

Selection, so that the test fits the machine: a case is kept when the RAM test_mcu.c will take
for it from its arena (state, scratch, outputs; the same sums as test_mcu.c's) fits --arena;
then cases are taken round-robin over the groups of number format x cell (f32 LSTM, int8 GRU,
int16 activations, ...), smallest first in each, while their embedded bytes fit --flash. Left-out cases are
listed in the file's top comment and on stderr. --only keeps the cases whose name matches one of
the comma-separated globs (e.g. 'int/q8_*,lstm_*'). Needs the compiled rnnedge package (for
rne_state_size / rne_scratch_size of each blob).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
try:
    from rnnedge.errors import RnnedgeError  # the installed package
except ImportError:  # the source tree (Model needs its build: NotBuiltError names the fix)
    sys.path.insert(0, str(ROOT))
    from rnnedge.errors import RnnedgeError
from rnnedge.blob.spec import OP_TAKE_LAST  # noqa: E402


def _round16(n: int) -> int:
    return (n + 15) // 16 * 16


@dataclass
class Case:
    """One case's files, its sizes, and what test_mcu.c needs to run it."""

    name: str  # stem relative to DATA, e.g. "int/q8_lstm_no_bias"
    blob: bytes
    integer: bool
    x: np.ndarray | None  # [T, B, in] float32 or int16; None for a long case
    y: np.ndarray | None
    state: bytes | None
    final: bytes | None
    long: tuple[int, ...] | None  # steps, batch, generator, seed, crc_y, crc_state
    arena: int = 0  # bytes test_mcu.c takes from its arena
    in_features: int = 0
    out_features: int = 0

    @property
    def steps(self) -> int:
        return int(self.x.shape[0]) if self.x is not None else int(self.long[0])  # type: ignore[index]

    @property
    def batch(self) -> int:
        return int(self.x.shape[1]) if self.x is not None else int(self.long[1])  # type: ignore[index]

    @property
    def flash(self) -> int:
        """Bytes embedded: the blob and the arrays (alignment padding not counted)."""
        arrays = [a.nbytes for a in (self.x, self.y) if a is not None]
        return len(self.blob) + sum(arrays) + len(self.state or b"") + len(self.final or b"")


def _npy(path: Path, what: str) -> np.ndarray | None:
    if not path.exists():
        return None
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise RnnedgeError(f"{path}: cannot read the {what}: {e}") from None


def read_case(data: Path, stem: str) -> Case:
    """The case DATA/<stem>.* (stem may start with "int/")."""
    base = data / stem
    blob = (data / f"{stem}.rne").read_bytes()
    integer = stem.startswith("int/")
    x, y = _npy(Path(f"{base}.x.npy"), "input"), _npy(Path(f"{base}.y.npy"), "expected output")
    state, final = _npy(Path(f"{base}.state.npy"), "state"), _npy(
        Path(f"{base}.final.npy"), "state"
    )
    spec = _npy(Path(f"{base}.long.npy"), "long-stream spec")
    want = np.int16 if integer else np.float32
    if spec is not None:
        if spec.shape != (6,) or spec.dtype != np.uint32:
            raise RnnedgeError(
                f"{base}.long.npy: expected uint32 [6], got {spec.dtype} {list(spec.shape)}"
            )
        long = tuple(int(v) for v in spec)
    elif x is None or y is None:
        raise RnnedgeError(f"{base}: needs .x.npy and .y.npy (or .long.npy)")
    else:
        long = None
        for a, what in ((x, "x"), (y, "y")):
            if a.dtype != want or a.ndim != 3:
                raise RnnedgeError(
                    f"{base}.{what}.npy: expected {np.dtype(want).name} [T, B, F], got {a.dtype} {list(a.shape)}"
                )
    for a, what, dtype in (
        (state, "state", np.uint8 if integer else np.float32),
        (final, "final", np.uint8),
    ):
        if a is not None and (a.dtype != dtype or a.ndim != 1):
            raise RnnedgeError(
                f"{base}.{what}.npy: expected {np.dtype(dtype).name} [n], got {a.dtype} {list(a.shape)}"
            )
    as_bytes = lambda a: a.tobytes() if a is not None else None  # noqa: E731
    return Case(stem, blob, integer, x, y, as_bytes(state), as_bytes(final), long)


def size_case(case: Case) -> None:
    """Fill in the features and the arena bytes test_mcu.c takes (its bufs_init and buffers)."""
    from rnnedge.model import Model

    model = Model.from_bytes(case.blob, source=case.name)
    blob = model.blob
    case.in_features, case.out_features = blob.in_features, blob.out_features
    b, t = case.batch, case.steps
    state, sc1, sc_t = model.state_bytes(b), model.scratch_bytes(b, 1), model.scratch_bytes(b, t)
    in_row, out_row = b * case.in_features, b * case.out_features
    out_steps = 1 if blob.many_to_one else t
    take_last_full = all(l.op != OP_TAKE_LAST or l.param[0] == l.in_features for l in blob.layers)
    common = 2 * _round16(state) + _round16(sc1)
    if case.long is None:
        if case.x.shape[2] != case.in_features or case.y.shape != (out_steps, b, case.out_features):  # type: ignore[union-attr]
            raise RnnedgeError(
                f"{case.name}: x {list(case.x.shape)} and y {list(case.y.shape)} do not fit the model "  # type: ignore[union-attr]
                f"({case.in_features} -> {case.out_features} features, {out_steps} output steps)"
            )
        esz = 2 if case.integer else 4
        case.arena = common + (_round16(sc_t) if t > 1 else 0) + _round16(out_steps * out_row * esz)
        case.arena += _round16(out_row * esz)
    elif blob.streamable and take_last_full:
        case.arena = common + _round16(in_row * 2) + _round16(out_row * 2)
    else:
        case.arena = (
            common + _round16(sc_t) + _round16(t * in_row * 2) + _round16(out_steps * out_row * 2)
        )


def find_cases(data: Path, only: list[str]) -> list[str]:
    stems = [p.name[:-4] for p in sorted(data.glob("*.rne"))]
    stems += ["int/" + p.name[:-4] for p in sorted((data / "int").glob("*.rne"))]
    if only:
        stems = [s for s in stems if any(fnmatch.fnmatchcase(s, g) for g in only)]
    return stems


def _group(name: str) -> tuple[str, str]:
    """(number format, cell) of a case from its name, e.g. ("q8", "lstm"), ("f32", "act")."""
    stem = name.split("/")[-1]
    fmt = stem.split("_")[0] if stem.startswith(("q8_", "q16_")) else "f32"
    cells = [c for c in ("lstm", "gru", "rnn", "dense", "act") if c in stem]
    return fmt, cells[0] if cells else "other"


def select(cases: list[Case], arena: int, flash: int) -> tuple[list[Case], list[str]]:
    """Cases whose arena need fits, taken round-robin over the groups (number format x cell:
    the smallest LSTM, GRU, RNN, ... case of each format first, then the second smallest of
    each) while their bytes fit flash; and the reasons for the others."""
    left_out, fitting = [], []
    for c in cases:
        (fitting if c.arena <= arena else left_out).append(c)
    left_out_text = [f"{c.name} (needs {c.arena} B of arena)" for c in left_out]
    groups: dict[tuple[str, str], list[Case]] = {}
    for c in sorted(fitting, key=lambda c: (c.flash, c.name)):
        groups.setdefault(_group(c.name), []).append(c)
    order = sorted(fitting, key=lambda c: (groups[_group(c.name)].index(c), c.flash, c.name))
    kept, used = [], 0
    for c in order:
        if used + c.flash > flash:
            left_out_text.append(f"{c.name} ({c.flash} B past the flash budget)")
        else:
            kept.append(c)
            used += c.flash
    kept.sort(key=lambda c: c.name)
    return kept, left_out_text


# -- C text -------------------------------------------------------------------------------------
def _f32_literal(v: np.float32) -> str:
    f = float(v)
    if f != f:
        return '__builtin_nanf("")'
    if f in (float("inf"), float("-inf")):
        return "__builtin_inff()" if f > 0 else "(-__builtin_inff())"
    text = f.hex()  # exact: a float32 is exactly a double
    mant, exp = text.split("p")
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    return f"{mant}p{exp}f"


def _rows(items: list[str], per_line: int) -> str:
    return "\n".join(
        "    " + ",".join(items[i : i + per_line]) + "," for i in range(0, len(items), per_line)
    )


def _array(ctype: str, name: str, items: list[str], per_line: int, attr: str = "") -> str:
    return f"static const {ctype} {name}[{len(items)}]{attr} = {{\n{_rows(items, per_line)}\n}};\n"


def c_source(cases: list[Case], left_out: list[str]) -> str:
    if not cases:
        raise RnnedgeError("no case fits the given --arena and --flash (or matches --only)")
    n_long = sum(c.long is not None for c in cases)
    n_int = sum(c.integer for c in cases) - n_long
    out = [
        "/* Generated by tools/make_mcu_vectors.py from tests/data/c: do not edit.",
        f" * {len(cases)} cases: {len(cases) - n_int - n_long} float, {n_int} integer, {n_long} long "
        f"integer streams; {sum(c.flash for c in cases)} bytes of blobs and arrays.",
    ]
    if left_out:
        out.append(f" * Left out ({len(left_out)}):")
        out += [f" *   {s}" for s in left_out]
    out += [" */", "#include <stddef.h>", "#include <stdint.h>", "", '#include "mcu_case.h"', ""]
    rows = []
    for i, c in enumerate(cases):
        align = int.from_bytes(c.blob[16:20], "little")
        out.append(_array("unsigned char", f"c{i}_blob", [str(b) for b in c.blob], 24,
                          f" __attribute__((aligned({align})))"))  # fmt: skip
        x = y = st = fin = "NULL"
        if c.x is not None:
            ctype = "int16_t" if c.integer else "float"
            fmt = (lambda v: str(int(v))) if c.integer else _f32_literal
            out.append(_array(ctype, f"c{i}_x", [fmt(v) for v in c.x.ravel()], 8))
            out.append(_array(ctype, f"c{i}_y", [fmt(v) for v in c.y.ravel()], 8))  # type: ignore[union-attr]
            x, y = f"c{i}_x", f"c{i}_y"
        for data_bytes, key in ((c.state, "state"), (c.final, "final")):
            if data_bytes is not None:
                out.append(_array("unsigned char", f"c{i}_{key}", [str(b) for b in data_bytes], 24,
                                  " __attribute__((aligned(16)))"))  # fmt: skip
        st = f"c{i}_state" if c.state is not None else "NULL"
        fin = f"c{i}_final" if c.final is not None else "NULL"
        state_size = len(c.state or c.final or b"")
        gen = c.long[2:] if c.long is not None else (0, 0, 0, 0)
        out_steps = c.y.shape[0] if c.y is not None else 0
        rows.append(
            f'    {{ "{c.name}", c{i}_blob, {len(c.blob)}u, {int(c.integer)}u, {c.steps}u, {c.batch}u, '
            f"{c.in_features}u, {c.out_features}u, {out_steps}u, {x}, {y}, {st}, {fin}, {state_size}u, "
            + ", ".join(f"{v}u" for v in gen)
            + " },"
        )
    out.append("const mcu_case mcu_cases[] = {")
    out += rows
    out += ["};", "", f"const uint32_t mcu_n_cases = {len(cases)}u;", ""]
    return "\n".join(out)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", type=Path, help="the C file to write")
    p.add_argument("--data", type=Path, default=ROOT / "tests" / "data" / "c", help="the vectors")
    p.add_argument("--arena", type=int, default=1 << 20, help="test_mcu.c's MCU_ARENA (bytes)")
    p.add_argument("--flash", type=int, default=1 << 30, help="budget for blobs and arrays (bytes)")
    p.add_argument("--only", default="", help="comma-separated globs of case names to consider")
    p.add_argument("--list", action="store_true", help="print the selected cases and their sizes")
    args = p.parse_args(argv)
    try:
        stems = find_cases(args.data, [g for g in args.only.split(",") if g])
        if not stems:
            raise RnnedgeError(
                f"{args.data}: no .rne case found" + (f" matching {args.only}" if args.only else "")
            )
        cases = [read_case(args.data, s) for s in stems]
        for c in cases:
            size_case(c)
        kept, left_out = select(cases, args.arena, args.flash)
        text = c_source(kept, left_out)
        if args.list:
            for c in kept:
                print(f"{c.name:60s} flash {c.flash:7d}  arena {c.arena:7d}")
        if args.output:
            write_atomic(args.output, text)
        print(
            f"make_mcu_vectors: {len(kept)} cases, {sum(c.flash for c in kept)} bytes embedded, "
            f"largest arena need {max(c.arena for c in kept)} B; {len(left_out)} left out",
            file=sys.stderr,
        )
        for s in left_out:
            print(f"  left out: {s}", file=sys.stderr)
    except (RnnedgeError, OSError) as e:
        print(f"make_mcu_vectors: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
