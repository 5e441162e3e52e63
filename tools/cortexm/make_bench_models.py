#!/usr/bin/env python3
"""Write the benchmark models for the Cortex-M figures: LSTM and GRU, 40 inputs, hidden 32..512.

    python3 tools/cortexm/make_bench_models.py OUT_DIR [--hidden 32,64,...] [--quant f32,int8]

The models are issue 5's (tools/bench's build_onnx: one layer, random weights at PyTorch's scale,
GRU with linear_before_reset) converted by rnnedge.convert; the integer formats are calibrated
on a fixed standard-normal sequence. Writes OUT_DIR/<cell>-<hidden>-<quant>.rne (kept if already
there) and OUT_DIR/models.tsv: name, blob bytes, weight bytes, state and step-scratch bytes for
one stream (the C library's rne_state_size / rne_scratch_size), and the layer formats.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
try:
    import rnnedge  # the installed package
except ImportError:  # the source tree, with its compiled extension
    sys.path.insert(0, str(ROOT))
    import rnnedge

import onnx  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))  # the benchmark package, tools/bench/

from bench.cases import FEATURES, HIDDEN_SIZES, Case, build_onnx  # noqa: E402
from rnnedge.blob.spec import FMT_NAMES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--hidden", default=",".join(map(str, HIDDEN_SIZES)))
    p.add_argument("--quant", default="f32,int8")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    calib = np.random.default_rng(0).standard_normal((64, 1, FEATURES)).astype(np.float32)
    rows = ["name\tblob_bytes\tweight_bytes\tstate_bytes\tscratch_bytes\tformats"]
    with tempfile.TemporaryDirectory() as tmp:
        for cell in ("lstm", "gru"):
            for hidden in (int(h) for h in args.hidden.split(",")):
                onnx_path = Path(tmp) / f"{cell}-{hidden}.onnx"
                for quant in args.quant.split(","):
                    blob = args.out / f"{cell}-{hidden}-{quant}.rne"
                    if not blob.exists():
                        if not onnx_path.exists():
                            onnx.save(
                                build_onnx(Case(f"{cell}-{hidden}", cell, hidden))[0], onnx_path
                            )
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            rnnedge.convert(onnx_path, blob, quant=quant,
                                            calibration=None if quant == "f32" else calib)  # fmt: skip
                    m = rnnedge.load(blob)
                    fmts = ",".join(
                        sorted({FMT_NAMES.get(l.fmt, str(l.fmt)) for l in m.blob.layers})
                    )
                    rows.append(f"{blob.stem}\t{len(m.blob.data)}\t{m.weight_bytes}\t{m.state_bytes(1)}\t"
                                f"{m.scratch_bytes(1, 1)}\t{fmts}")  # fmt: skip
    (args.out / "models.tsv").write_text("\n".join(rows) + "\n")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
