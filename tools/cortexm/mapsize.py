#!/usr/bin/env python3
"""Flash and RAM bytes of a linked Cortex-M program, by where they came from (its linker map).

    python3 tools/cortexm/mapsize.py PROGRAM.map [--lib librnnedge.a]

Sums the sizes of the input sections the linker kept (after --gc-sections) per origin: the
rnnedge library (members of --lib), libm, libc, libgcc, and everything else (the program, its
startup, the model). Flash is code + read-only data (+ the initial values of .data); RAM is
.data + .bss. The model blob (section .rodata.model) is counted apart. Prints one line:

    lib_flash=N lib_ram=N libm_flash=N libc_flash=N libgcc_flash=N other_flash=N model=N
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

# " .text.name  0xADDR  0xSIZE file" or, for a long section name, the name alone on one line
# and the rest on the next
_ENTRY = re.compile(r"^ (\.[\w.$-]+|COMMON)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
_NAME_ONLY = re.compile(r"^ (\.[\w.$-]+|COMMON)\s*$")


def origin(path: str, lib: str) -> str:
    name = Path(path.split("(")[0]).name
    if name == lib:
        return "lib"
    for key in ("libm", "libc", "libgcc"):
        if name in (f"{key}.a", f"{key}_nano.a"):
            return key
    return "other"


def kind(section: str) -> str | None:
    if section.startswith(".rodata.model"):
        return "model"
    if section.startswith(
        (".text", ".rodata", ".ARM.exidx", ".ARM.extab", ".glue", ".vfp11", ".v4_bx")
    ):
        return "flash"
    if section.startswith(".data"):
        return "data"
    if section.startswith((".bss", "COMMON")):
        return "bss"
    return None


def sizes(map_text: str, lib: str) -> dict[str, int]:
    start = map_text.find("Linker script and memory map")
    if start < 0:
        raise ValueError("not a GNU ld map file (no 'Linker script and memory map')")
    totals: dict[str, int] = defaultdict(int)
    pending = None
    for line in map_text[start:].splitlines():
        m = _NAME_ONLY.match(line)
        if m:
            pending = m.group(1)
            continue
        m = _ENTRY.match(line)
        if m and (m.group(1) or pending) and "(size before relaxing)" not in line:
            section = m.group(1) or pending
            size, path = int(m.group(3), 16), m.group(4).strip()
            k = kind(section)
            if k is not None and size > 0 and not path.startswith("load address"):
                src = origin(path, lib)
                if k == "model":
                    totals["model"] += size
                elif k == "flash":
                    totals[f"{src}_flash"] += size
                else:
                    totals[f"{src}_ram"] += size
                    totals[f"{src}_flash"] += size if k == "data" else 0
        pending = None
    return totals


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("map", type=Path)
    p.add_argument("--lib", default="librnnedge.a")
    args = p.parse_args(argv)
    try:
        t = sizes(args.map.read_text(), args.lib)
    except (OSError, ValueError) as e:
        print(f"mapsize: {args.map}: {e}", file=sys.stderr)
        return 1
    keys = ["lib_flash", "lib_ram", "libm_flash", "libc_flash", "libc_ram", "libgcc_flash",
            "other_flash", "other_ram", "model"]  # fmt: skip
    print(" ".join(f"{k}={t.get(k, 0)}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
