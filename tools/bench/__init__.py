"""The rnnedge benchmark (docs/benchmarks.md): rnnedge against onnxruntime (and PyTorch when it is
installed) on the same models, in the same process and run. Run it with `python tools/bench.py`.

What each figure measures (docs/benchmarks.md says more):
- step: one `Stream.step` through the Python API at batch 1, timed one call at a time: median and
  p99 over `steps` calls after `warmup`. onnxruntime does the same with its state fed back by hand
  (initial_h/initial_c graph inputs, Y_h/Y_c outputs: one `run()` per step, and with IO binding);
  PyTorch one module call per step.
- c_step: `rne_step` in C with no Python around it (tools/bench_step.c).
- seq: one call over a whole sequence of T steps (T = 1, 100, 1000), microseconds per step.
- floor: the time to stream the blob's tensor bytes once through the core, at the cache bandwidth
  measured on this machine for a buffer of that size.
- rss: peak resident memory of a fresh process that imports one engine, loads the model and runs
  one step.

Models are built in-process with onnx.helper (random weights at PyTorch's initial scale), converted
with `rnnedge.convert` for every format in `rnnedge.ir.layers.QUANTS`, and run by every
engine from the same ONNX file. Every engine's outputs are compared with onnxruntime's before it
is timed (`max_abs_err`), so a fast wrong answer shows.

Modules, by concern: cases (the cases, the ONNX models built from them), engines (rnnedge,
onnxruntime, PyTorch), timing, probes (the C step timer, bandwidth, peak memory, the machine),
report (markdown, JSON, PNG, the docs section), runner (one case, a whole run, the command line),
conv (the conv front ends against their multiply-add floor: `tools/bench.py --conv`).
They import the rnnedge package only (what it exports and its helpers), never tests/.
"""

from .cases import (
    CHECK_STEPS,
    FEATURES,
    GATES,
    HIDDEN_SIZES,
    SEQ_LENGTHS,
    Case,
    LayerWeights,
    blob_case,
    build_onnx,
    select_cases,
    standard_cases,
    to_graph,
)
from .conv import ConvCase, build_conv_onnx, conv_cases, conv_markdown, macs_per_step, mac_floor
from .conv import run_conv, select_conv_cases
from .engines import Engine, OrtEngine, RnnedgeEngine, TorchEngine, step_outputs
from .probes import bandwidth, build_c_bench, c_step_time, machine, peak_rss_mib, source_root
from .report import CONV_BEGIN, CONV_END, DOCS_BEGIN, DOCS_END, markdown, ratio_text, targets, update_docs
from .report import write_outputs, write_png
from .runner import Config, bench_case, main, run_benchmark
from .timing import cffi_overhead, harness_overhead, time_interleaved, time_steps
