#!/usr/bin/env python3
"""The full benchmark of issue 5 (docs/benchmarks.md): every case, every engine, every number format.

    python tools/bench.py                 # writes bench-out/bench.md, bench.json, bench.png
    python tools/bench.py --quick         # a smoke run in seconds
    python tools/bench.py --cases lstm-128,gru-128 --out /tmp/b
    python tools/bench.py --list          # the case names
    python tools/bench.py --blob MODEL.rne --onnx MODEL.onnx   # one model of your own
    python tools/bench.py --conv          # the conv front ends against their multiply-add floor

The benchmark is the package tools/bench/ (cases, engines, timing, probes, report, runner); this
script only runs it. It imports the rnnedge package: from a source checkout the extension built in
place (`python setup.py build_ext --inplace`), else the installed package.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if any((ROOT / "rnnedge").glob("_rnnedge*.so")) or any((ROOT / "rnnedge").glob("_rnnedge*.pyd")):
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))  # the package tools/bench/ (a package wins over this bench.py)

from bench.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
