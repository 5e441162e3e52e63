#!/usr/bin/env python3
"""The full benchmark of issue 5 (docs/benchmarks.md): every case, every engine, every number format.

    python tools/bench.py                 # writes bench-out/bench.md, bench.json, bench.png
    python tools/bench.py --quick         # a smoke run in seconds
    python tools/bench.py --cases lstm-128,gru-128 --out /tmp/b
    python tools/bench.py --list          # the case names

Everything lives in rnnedge/bench.py; this script only runs it. From a source checkout it uses the
extension built in place (`python setup.py build_ext --inplace`), else the installed package.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if any((ROOT / "rnnedge").glob("_rnnedge*.so")) or any((ROOT / "rnnedge").glob("_rnnedge*.pyd")):
    sys.path.insert(0, str(ROOT))

from rnnedge.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
