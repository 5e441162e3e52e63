"""rnnedge's C step against RTNeural's compile-time API (issue 17): one process per case, the same
weights and inputs, the engines timed in turn (tools/rtneural_compare.cpp).

    python tools/rtneural_compare.py [--cases lstm-8,gru-32,...] [--features 40] [--rounds 41]
                                     [--block 2000] [--json OUT.json] [--rtneural DIR]

RTNeural (BSD-3-Clause, header-only, with Eigen in its modules/) is taken from --rtneural or
$RTNEURAL_DIR, else cloned at the pinned commit into ~/.cache/rnnedge-rtneural (git and network
needed); when none of these is possible the script says so and exits 0 (status 3 with
--require), so that a machine without them skips the comparison instead of failing. Each case is
an ONNX LSTM/GRU with random weights (tools/bench/cases.py `build_onnx`, PyTorch's initial
scale), converted by rnnedge to f32 and int8 blobs; RTNeural gets the same weights
(LSTMLayerT / GRULayerT over Eigen, -O3 -march=native); the library sources get the Python
extension's flags (tools/bench/probes.py). Prints a table and, with --json, the figures: the
median over the rounds of ns per step at batch 1, rnnedge f32 / RTNeural, rnnedge int8, and the
largest |rnnedge - RTNeural| over 256 steps (f32 must agree to rounding, int8 to its quantization).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TOOLS = Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))
from bench.cases import Case, build_onnx  # noqa: E402
from bench.probes import _compile, extension_cflags, machine  # noqa: E402

RTNEURAL_URL = "https://github.com/jatinchowdhury18/RTNeural"
RTNEURAL_COMMIT = "1fb1f075a5d66e85bfc8f488c3f3626840cb3a1d"  # 2025-11-08
DEFAULT_CASES = "lstm-8,lstm-16,lstm-32,lstm-64,lstm-128,gru-8,gru-32,gru-128"
SKIPPED = 3  # --require: the exit status when RTNeural cannot be had


def find_rtneural(given: str | None) -> tuple[Path | None, str]:
    """RTNeural's checkout (holding RTNeural/RTNeural.h and modules/Eigen), and where it came from;
    (None, why) when there is none and it cannot be cloned."""
    for where, path in (("--rtneural", given), ("$RTNEURAL_DIR", os.environ.get("RTNEURAL_DIR"))):
        if path:
            root = Path(path)
            if not (root / "RTNeural" / "RTNeural.h").is_file() or not (root / "modules" / "Eigen").is_dir():
                return None, f"{where} {root}: not an RTNeural checkout (RTNeural/RTNeural.h, modules/Eigen)"
            return root, f"{root} ({where})"
    cache = Path.home() / ".cache" / "rnnedge-rtneural"
    if (cache / "RTNeural" / "RTNeural.h").is_file():
        return cache, f"{cache} (cached clone at {RTNEURAL_COMMIT[:10]})"
    git = shutil.which("git")
    if git is None:
        return None, "no RTNeural checkout (--rtneural, $RTNEURAL_DIR) and no git to clone one"
    tmp = Path(tempfile.mkdtemp(prefix="rtneural-"))
    steps = [[git, "init", "-q", str(tmp)],
             [git, "-C", str(tmp), "fetch", "-q", "--depth", "1", RTNEURAL_URL, RTNEURAL_COMMIT],
             [git, "-C", str(tmp), "checkout", "-q", "FETCH_HEAD"]]  # fmt: skip
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            why = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["failed"]
            return None, f"cannot clone {RTNEURAL_URL} at {RTNEURAL_COMMIT[:10]}: {why[0]}"
    cache.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(tmp), cache)
    return cache, f"{cache} (cloned at {RTNEURAL_COMMIT[:10]})"


def build_library(root: Path, out: Path, cc: str) -> list[str]:
    """csrc/*.c compiled with the extension's flags: the objects to link."""
    flags, objects = extension_cflags(root), []
    for src in sorted((root / "csrc").glob("*.c")):
        obj = out / f"{src.stem}.o"
        _compile([cc, *flags, f"-I{root / 'csrc'}", "-c", str(src), "-o", str(obj)], src)
        objects.append(str(obj))
    return objects


def run_case(case: Case, root: Path, rtneural: Path, objects: list[str], out: Path, cxx: str,
             block: int, rounds: int) -> dict:  # fmt: skip
    """Convert the case to f32 and int8 blobs, build the comparison for its sizes, run it."""
    import onnx

    import rnnedge

    model, weights = build_onnx(case)
    w = weights[0]
    onnx_path = out / f"{case.name}.onnx"
    onnx.save(model, onnx_path)
    rng = np.random.default_rng(0)
    calib = rng.uniform(-1, 1, (64, 8, case.features)).astype(np.float32)  # [T, B, F], the inputs' range
    f32, int8 = out / f"{case.name}.rne", out / f"{case.name}.int8.rne"
    rnnedge.convert(onnx_path, f32)
    rnnedge.convert(onnx_path, int8, quant="int8", calibration=calib)
    wfile = out / f"{case.name}.weights.bin"
    np.concatenate([w.W[0].ravel(), w.R[0].ravel(), w.B[0].ravel()]).astype(np.float32).tofile(wfile)
    exe = out / f"compare-{case.name}"
    cmd = [cxx, "-std=c++17", "-O3", "-march=native", "-DNDEBUG", "-DRTNEURAL_USE_EIGEN=1",
           "-DRTNEURAL_DEFAULT_ALIGNMENT=32", "-DEIGEN_STACK_ALLOCATION_LIMIT=0", f"-DIN={case.features}", f"-DHID={case.hidden}",
           *(["-DCELL_GRU"] if case.cell == "gru" else []),
           f"-I{rtneural}", f"-I{rtneural / 'modules' / 'Eigen'}", f"-I{rtneural / 'modules' / 'json'}",
           f"-I{root / 'csrc'}", str(TOOLS / "rtneural_compare.cpp"), *objects, "-o", str(exe), "-lm"]  # fmt: skip
    _compile(cmd, exe)
    proc = subprocess.run([str(exe), str(f32), str(int8), str(wfile), str(block), str(rounds)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"{case.name}: {proc.stderr.strip()}")
    r = json.loads(proc.stdout)
    r["case"] = case.name
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=DEFAULT_CASES, help=f"comma-separated CELL-HIDDEN (default {DEFAULT_CASES})")
    ap.add_argument("--features", type=int, default=40, help="input features (default 40)")
    ap.add_argument("--block", type=int, default=2000, help="steps per engine per round (default 2000)")
    ap.add_argument("--rounds", type=int, default=41, help="interleaved rounds (default 41)")
    ap.add_argument("--rtneural", help="an RTNeural checkout (default $RTNEURAL_DIR, else a pinned clone)")
    ap.add_argument("--json", metavar="OUT.json", help="write the figures here")
    ap.add_argument("--require", action="store_true",
                    help=f"exit {SKIPPED} instead of 0 when RTNeural cannot be had")  # fmt: skip
    args = ap.parse_args(argv)

    cases = []
    for name in args.cases.split(","):
        cell, _, hidden = name.strip().partition("-")
        if cell not in ("lstm", "gru") or not hidden.isdigit():
            ap.error(f"case {name!r}: expected lstm-H or gru-H")
        cases.append(Case(f"{cell}-{hidden}", cell, int(hidden), features=args.features))
    rtneural, where = find_rtneural(args.rtneural)
    if rtneural is None:
        print(f"rtneural_compare: skipped: {where}")
        return SKIPPED if args.require else 0
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cxx or not cc:
        print("rtneural_compare: skipped: no C and C++ compilers (set CC, CXX)")
        return SKIPPED if args.require else 0
    root = TOOLS.parent
    rows = []
    with tempfile.TemporaryDirectory(prefix="rtneural-compare-") as tmp:
        out = Path(tmp)
        objects = build_library(root, out, cc)
        for case in cases:
            rows.append(run_case(case, root, rtneural, objects, out, cxx, args.block, args.rounds))
            r = rows[-1]
            print(f"{r['case']}: rnnedge f32 {r['rnnedge_f32_ns']:.0f} ns, RTNeural {r['rtneural_ns']:.0f} ns",
                  file=sys.stderr)  # fmt: skip
    print(f"RTNeural: {where}; input {args.features}, batch 1, one step per call; median of "
          f"{args.rounds} interleaved rounds of {args.block} steps; ns per step")
    print()
    print("| case | rnnedge f32 | RTNeural (Eigen) | f32 / RTNeural | rnnedge int8 | int8 / RTNeural "
          "| max abs diff f32 | int8 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['rnnedge_f32_ns']:.0f} | {r['rtneural_ns']:.0f} | "
              f"{r['rnnedge_f32_ns'] / r['rtneural_ns']:.2f} | {r['rnnedge_int8_ns']:.0f} | "
              f"{r['rnnedge_int8_ns'] / r['rtneural_ns']:.2f} | {r['max_abs_diff_f32']:.1e} | "
              f"{r['max_abs_diff_int8']:.1e} |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"rtneural": where, "commit": RTNEURAL_COMMIT,
                                               "machine": machine(), "rows": rows}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
