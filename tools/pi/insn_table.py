#!/usr/bin/env python3
"""The instructions-per-step table of docs/raspberry-pi.md, from tools/pi/insn_count.sh's results.

    python3 tools/pi/insn_table.py RESULTS.tsv MODELS.tsv [--cpu cortex-a72] [--flags "-O3 ..."]
                                   [--steps 100] [--features 40]

RESULTS.tsv: model, variant (neon / scalar / novec), the two counts, steps, instructions per step,
y0. MODELS.tsv: tools/cortexm/make_bench_models.py's list (name, blob, weight, state and scratch
bytes). Prints a markdown table: one row per cell, hidden size and number format, with the
multiply-accumulates of one step and the instructions per step of each build, the instructions
per multiply-accumulate in brackets.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

GATES = {"lstm": 4, "gru": 3}
FORMATS = ("f32", "int16", "int8")
VARIANTS = {
    "neon": "NEON",
    "scalar": "scalar (`RNE_NO_SIMD`)",
    "novec": "scalar, `-fno-tree-vectorize`",
}


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def parse_name(name: str) -> tuple[str, int, str]:
    """'lstm-128-int8' -> ('lstm', 128, 'int8'); ValueError names the file's row otherwise."""
    parts = name.split("-")
    if len(parts) != 3 or parts[0] not in GATES or not parts[1].isdigit():
        raise ValueError(f"model name {name!r} is not <lstm|gru>-<hidden>-<format>")
    return parts[0], int(parts[1]), parts[2]


def table(results: list[dict[str, str]], models: list[dict[str, str]], features: int) -> str:
    counts: dict[tuple[str, int, str], dict[str, int]] = defaultdict(dict)
    for row in results:
        if row["variant"] not in VARIANTS:
            raise ValueError(f"unknown variant {row['variant']!r} for {row['model']}")
        counts[parse_name(row["model"])][row["variant"]] = int(row["insns_per_step"])
    names = {m["name"] for m in models}
    variants = [v for v in VARIANTS if any(v in c for c in counts.values())]
    head = ["model", "format", "MACs / step"] + [VARIANTS[v] for v in variants]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = sorted(counts, key=lambda k: (list(GATES).index(k[0]), k[1], FORMATS.index(k[2])))
    for cell, hidden, fmt in order:
        if f"{cell}-{hidden}-{fmt}" not in names:
            raise ValueError(f"{cell}-{hidden}-{fmt} has counts but is not in the models list")
        macs = GATES[cell] * hidden * (features + hidden)
        row = [f"{cell.upper()} {hidden}", fmt, f"{macs:,}"]
        for v in variants:
            n = counts[(cell, hidden, fmt)].get(v)
            row.append("-" if n is None else f"{n:,} ({n / macs:.2f})")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path)
    p.add_argument("models", type=Path)
    p.add_argument("--cpu", default="cortex-a72")
    p.add_argument("--flags", default="")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--features", type=int, default=40)
    args = p.parse_args(argv)
    try:
        text = table(read_tsv(args.results), read_tsv(args.models), args.features)
    except (OSError, KeyError, ValueError) as e:
        print(f"insn_table.py: {e}", file=sys.stderr)
        return 1
    print(
        f"Instructions per step (batch 1) on qemu-aarch64 -cpu {args.cpu}, library built with "
        f"`{args.flags}`; (count of {args.steps} steps - count of 0) / {args.steps}; in brackets, "
        "instructions per multiply-accumulate. Instructions, not cycles.\n"
    )
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
