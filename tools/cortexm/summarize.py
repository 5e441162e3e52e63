#!/usr/bin/env python3
"""Markdown tables from tools/cortexm/run.sh's results, for docs/embedded.md.

    python3 tools/cortexm/summarize.py RESULTS.txt MODELS.tsv OPT

RESULTS.txt has one line per test run ("m3 test 647 passed, 0 failed") and per size probe
("m3 lstm-32-f32 all lib_flash=... insns_per_step=N bench steps 1 state S scratch C stack K ...",
or "m0 lstm-512-f32 all nofit"); MODELS.tsv is make_bench_models.py's.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CORES = ["m0", "m3", "m4f", "m7", "m33"]
CORE_NAMES = {"m0": "M0", "m3": "M3", "m4f": "M4F", "m7": "M7", "m33": "M33"}


def parse(results: str) -> tuple[dict[str, str], dict[tuple[str, str, str], dict[str, str]]]:
    tests: dict[str, str] = {}
    probes: dict[tuple[str, str, str], dict[str, str]] = {}
    for line in results.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[1] == "test":
            opt = parts[2].replace("_", " ")
            tests[parts[0]] = (
                tests.get(parts[0], "")
                + ("; " if parts[0] in tests else "")
                + f"{' '.join(parts[3:])} ({opt})"
            )
        elif len(parts) >= 4:
            core, model, variant = parts[:3]
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            m = re.search(r"state (\d+) scratch (\d+) stack (\d+)", line)
            if m:
                fields.update(state=m[1], scratch=m[2], stack=m[3])
            if parts[3] == "nofit":
                fields["nofit"] = parts[4] if len(parts) > 4 else "?"
            probes[(core, model, variant)] = fields
    return tests, probes


def kib(n: int) -> str:
    return f"{n / 1024:.1f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    tests, probes = parse(Path(argv[0]).read_text())
    models = [l.split("\t") for l in Path(argv[1]).read_text().splitlines()[1:] if l.strip()]
    opt = argv[2]
    cores = [c for c in CORES if c in tests or any(k[0] == c for k in probes)]
    out = [
        "## Tests\n",
        table(["core", "test_mcu"], [[CORE_NAMES[c], tests.get(c, "not run")] for c in cores]),
    ]

    def size_cell(core: str, model: str, variant: str) -> str:
        p = probes.get((core, model, variant))
        if p is None or "nofit" in p:
            return "-"
        runtime = sum(int(p.get(k, 0)) for k in ("libm_flash", "libc_flash", "libgcc_flash"))
        return f"{kib(int(p['lib_flash']))} + {kib(runtime)}"

    rows = []
    for label, model, variant in (
        ("whole library (every cell, f32 and integer)", "lstm-32-f32", "all"),
        ("LSTM only, f32 (export-c's -DRNE_NO_* set)", "lstm-32-f32", "lstm-only"),
        ("LSTM only, int8 (export-c's -DRNE_NO_* set)", "lstm-32-int8", "lstm-only"),
    ):
        rows.append([label] + [size_cell(c, model, variant) for c in cores])
    exact = [
        probes.get((c, "lstm-32-int8", "lstm-only"), {}).get("lib_flash", "-") for c in cores
    ]
    out += [
        f"\n## Flash (KiB, {opt}): the library + what it pulls from libm, libc (mem*) and libgcc\n",
        table(["build"] + [CORE_NAMES[c] for c in cores], rows),
        "\nLSTM only, int8: library flash in bytes (goal < 16,384): "
        + ", ".join(f"{CORE_NAMES[c]} {b}" for c, b in zip(cores, exact)),
    ]

    rows = []
    for name, blob, weights, state, scratch, fmts in models:
        # the C library's own figures on the target, where a probe ran (else the binding's)
        ran = [
            probes[(c, name, "all")] for c in cores if "state" in probes.get((c, name, "all"), {})
        ]
        if ran:
            state, scratch = ran[0]["state"], ran[0]["scratch"]
        stacks = [probes.get((c, name, "all"), {}).get("stack", "-") for c in cores]
        rows.append([name, kib(int(blob)), state, scratch, str(int(state) + int(scratch))] + stacks)
    out += [
        "\n## RAM per stream (bytes) and stack of the bench program (bytes, per core)\n",
        table(["model", "blob KiB", "state", "scratch", "state + scratch"]
              + [f"stack {CORE_NAMES[c]}" for c in cores], rows),  # fmt: skip
    ]

    rows = []
    for name, *_ in models:
        cells = []
        for c in cores:
            p = probes.get((c, name, "all"))
            if p is None:
                cells.append("not run")
            elif "nofit" in p:
                cells.append(f"no {p['nofit']}")
            else:
                n = p.get("insns_per_step", "-")
                cells.append(f"{int(n):,}" if n.isdigit() else n)
        rows.append([name] + cells)
    out += [
        "\n## Instructions per rne_step (qemu TCG plugin count; instructions, not cycles)\n",
        table(["model"] + [CORE_NAMES[c] for c in cores], rows),
        "",
    ]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
