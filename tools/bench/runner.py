"""Running the benchmark: one case through every engine (checked against onnxruntime, then timed),
a whole run, and `tools/bench.py`'s command line."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import subprocess
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from rnnedge.errors import InputError, RnnedgeError
from rnnedge.measure import module_available
from rnnedge.progress import Progress, quiet_progress

from .cases import CHECK_STEPS, SEQ_LENGTHS, Case, _F32, blob_case, build_onnx, select_cases
from .cases import standard_cases, to_graph
from .engines import Engine, LiteRTEngine, OrtEngine, RnnedgeEngine, TorchEngine, TractEngine
from .engines import ort_int8_engine, step_outputs
from .probes import bandwidth, build_c_bench, c_step_time, extension_cflags, machine
from .probes import peak_rss_mib, source_root
from .report import markdown, update_docs, write_outputs
from .timing import cffi_overhead, harness_overhead, time_interleaved, time_steps

@dataclass
class Config:
    steps: int = 2000
    warmup: int = 200
    seq_lengths: tuple[int, ...] = SEQ_LENGTHS
    seq_budget_s: float = 0.4
    formats: tuple[str, ...] | None = None  # None: every rnnedge.ir.layers.QUANTS
    ort: bool = True
    ort_int8: bool = True
    torch: bool = True
    peers: bool = True  # tract and LiteRT, where installed (LiteRT's models also need tensorflow)
    rss: bool = True
    c_bench: bool = True
    cffi_rounds: int = 30  # rounds of cffi_overhead (the Python around a step's C call)
    seed: int = 0

    @staticmethod
    def quick() -> "Config":
        """Few steps, T = 100 only, no peak memory, no PyTorch: seconds, for smoke runs."""
        return Config(
            steps=200,
            warmup=20,
            seq_lengths=(100,),
            seq_budget_s=0.05,
            ort_int8=False,
            torch=False,
            peers=False,
            rss=False,
            cffi_rounds=3,
        )


@dataclass
class Tools:
    """What a run shares between cases: the C bench program and the bandwidths measured so far."""

    exe: Path | None = None
    exe_note: str = ""
    bandwidths: dict[int, dict[str, Any]] = field(default_factory=dict)

    def bandwidth(self, nbytes: int) -> dict[str, Any]:
        if nbytes not in self.bandwidths:
            self.bandwidths[nbytes] = bandwidth(nbytes, self.exe)
        return self.bandwidths[nbytes]


def quant_formats(config: Config) -> list[str]:
    from rnnedge.ir.layers import QUANTS

    if config.formats is None:
        return list(QUANTS)
    missing = [f for f in config.formats if f not in QUANTS]
    if missing:
        raise InputError(
            f"format(s) {', '.join(missing)} not available; rnnedge writes {', '.join(QUANTS)}"
        )
    return list(config.formats)


def convert_quiet(
    onnx_path: Path, out: Path, quant: str, calibration: np.ndarray | None
) -> list[str]:
    """rnnedge.convert, passing calibration data to the integer formats when convert takes it;
    returns the warnings it gave."""
    from rnnedge.conversion import convert

    kwargs: dict[str, Any] = {}
    if (
        quant != "f32"
        and calibration is not None
        and "calibration" in inspect.signature(convert).parameters
    ):
        kwargs["calibration"] = calibration
    with warnings.catch_warnings(record=True) as caught, quiet_progress():  # the run's bar shows
        warnings.simplefilter("always")
        convert(onnx_path, out, quant=quant, **kwargs)
    return [f"{quant}: {w.message}" for w in caught]


def _max_err(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        raise RnnedgeError(
            f"output shape {list(a.shape)} differs from the reference's {list(b.shape)}"
        )
    return float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0


def bench_case(
    case: Case, config: Config, work: Path, tools: Tools, progress: Progress | None = None
) -> dict[str, Any]:
    """Benchmark one case with every engine available; returns its JSON-ready results."""

    def tick(what: str) -> None:
        if progress is not None:
            progress.update(f"{case.name}: {what}", advance=0)

    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"case": case.describe(), "engines": {}, "notes": []}
    rng = np.random.default_rng(config.seed + 1)
    n_steps = config.warmup + config.steps
    length = max(n_steps, *config.seq_lengths, CHECK_STEPS)
    x_tbf = rng.standard_normal((length, 1, case.features)).astype(_F32)
    onnx_path, weights = _onnx_model(case, config, work, tick)
    if onnx_path is not None:
        result["onnx_bytes"] = onnx_path.stat().st_size
    blobs = _blobs(case, config, onnx_path, work, rng, result, tick)
    engines = _engines(case, config, onnx_path, weights, blobs, work, result, tick)

    reference = next((e for e in engines if e.name == "ort"), engines[0])
    check = x_tbf[:CHECK_STEPS]
    ref_seq = reference.seq_output(reference.run(reference.seq_input(check)))
    ref_steps = step_outputs(reference, check) if reference.streamable else None
    for eng in engines:
        r: dict[str, Any] = {"reference": reference.name}
        result["engines"][eng.name] = r
        with eng.context():
            if eng.name != "ort-iobinding":  # its sequence mode is plain onnxruntime's
                seq_out = eng.seq_output(eng.run(eng.seq_input(check)))
                r["max_abs_err_seq"] = _max_err(seq_out, ref_seq)
            if eng.streamable and ref_steps is not None:
                r["max_abs_err_step"] = _max_err(step_outputs(eng, check), ref_steps)
                tick(f"{eng.name} step")
                inputs = eng.step_inputs(x_tbf[:n_steps])
                r["step"] = time_steps(eng.stepper(), inputs, config.warmup)
                if isinstance(eng, RnnedgeEngine):  # the same steps into one caller array
                    r["step_into"] = time_steps(eng.stepper_into(), inputs, config.warmup)
        if isinstance(eng, RnnedgeEngine):
            _rnnedge_extras(eng, blobs[eng.model.quant], r, config, tools, tick)
    _sequence_mode(engines, x_tbf, config, result, tick)
    if config.rss:
        _peak_memory(case, engines, blobs, onnx_path, result, tick)
    return result


def _sequence_mode(engines: list[Engine], x_tbf: np.ndarray, config: Config,
                   result: dict[str, Any], tick: Callable[[str], None]) -> None:
    """Sequence mode: for each T, every engine's calls interleaved (time_interleaved), under
    every engine's context at once; per step: the fastest call / T (the least disturbed by other
    work on a shared machine), and the median."""
    seq = [e for e in engines if e.name != "ort-iobinding"]  # its sequence mode is plain ort's
    for e in seq:
        result["engines"][e.name]["seq"] = {}
    with contextlib.ExitStack() as stack:
        for e in seq:
            stack.enter_context(e.context())
        for t in config.seq_lengths:
            tick(f"sequence T={t}")
            calls = {e.name: (e.run, e.seq_input(x_tbf[:t])) for e in seq}
            budget = config.seq_budget_s * len(calls)
            for name, stats in time_interleaved(calls, budget).items():
                result["engines"][name]["seq"][str(t)] = {
                    **stats,
                    "per_step_us": stats["min_us"] / t,
                    "per_step_median_us": stats["median_us"] / t,
                }


def _onnx_model(case: Case, config: Config, work: Path, tick: Callable[[str], None]):
    """The case's ONNX file (built and saved into work for a built case) and its weights."""
    if not case.built:
        return case.onnx, None
    import onnx

    tick("building ONNX")
    model, weights = build_onnx(case, config.seed)
    path = work / f"{case.name}.onnx"
    onnx.save(model, str(path))
    return path, weights


def _blobs(case: Case, config: Config, onnx_path: Path | None, work: Path,
           rng: np.random.Generator, result: dict[str, Any],
           tick: Callable[[str], None]) -> dict[str, Path]:  # fmt: skip
    """format -> .rne file: the given blob, or the ONNX model converted to every format. The
    integer formats are calibrated on random inputs like the timed ones."""
    import rnnedge

    if case.blob is not None:
        return {rnnedge.load(case.blob).quant: case.blob}
    assert onnx_path is not None
    blobs, calibration = {}, None
    for fmt in quant_formats(config):
        tick(f"converting to {fmt}")
        if fmt != "f32" and calibration is None:
            x_cal = rng.standard_normal((CHECK_STEPS, 8, case.features)).astype(_F32)
            calibration = to_graph(x_cal, _onnx_input_axes(onnx_path))
        blobs[fmt] = work / f"{case.name}.{fmt}.rne"
        result["notes"] += convert_quiet(onnx_path, blobs[fmt], fmt, calibration)
    return blobs


def _engines(case: Case, config: Config, onnx_path: Path | None, weights, blobs: dict[str, Path],
             work: Path, result: dict[str, Any], tick: Callable[[str], None]) -> list[Engine]:  # fmt: skip
    """rnnedge in every format, then onnxruntime (float, IO binding, int8), PyTorch, tract and
    LiteRT (float, dynamic-range int8) where available and asked for; a peer that is not
    installed, or cannot take the case, is a note in the results."""
    import rnnedge

    engines: list[Engine] = [RnnedgeEngine(rnnedge.load(path)) for path in blobs.values()]
    first = engines[0]
    if first.model.in_features != case.features:
        raise InputError(
            f"{case.name}: the model takes {first.model.in_features} features per step, "
            f"the case says {case.features}"
        )
    axes = (first.in_axes, first.out_axes, case.features)
    if onnx_path is not None and config.ort and module_available("onnxruntime"):
        tick("onnxruntime session")
        engines.append(OrtEngine("ort", onnx_path, *axes))
        if engines[-1].streamable:
            engines.append(OrtEngine("ort-iobinding", onnx_path, *axes, iobinding=True))
        if config.ort_int8:
            engines.append(ort_int8_engine(onnx_path, work, case, *axes[:2], result))
    if weights is not None and config.torch and module_available("torch"):
        engines.append(TorchEngine(case, weights))
    if config.peers:
        _peers(case, onnx_path, weights, work, axes, engines, result, tick)
    return engines


def _peers(case: Case, onnx_path: Path | None, weights, work: Path, axes: tuple[str, str, int],
           engines: list[Engine], result: dict[str, Any], tick: Callable[[str], None]) -> None:  # fmt: skip
    """tract on the ONNX file; LiteRT on .tflite files made from the weights (built cases, one
    direction). What is missing or refused is said in the case's notes, once per peer."""
    if onnx_path is not None:
        if not module_available("tract"):
            result["notes"].append("tract: not installed (pip install tract)")
        else:
            tick("tract")
            try:
                engines.append(TractEngine(onnx_path, work, *axes))
            except Exception as e:  # noqa: BLE001 - a peer's failure is a note, not the run's end
                result["notes"].append(f"tract: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    missing = [m for m, pkg in (("ai_edge_litert", "ai-edge-litert"), ("tensorflow", "tensorflow-cpu"))
               if not module_available(m)]  # fmt: skip
    if missing:
        result["notes"].append(f"LiteRT: {', '.join(missing)} not installed (pip install ai-edge-litert "
                               "tensorflow-cpu: TensorFlow's converter makes the .tflite files)")
    elif weights is None or case.bidirectional:
        result["notes"].append("LiteRT: built one-direction cases only (the .tflite is made from "
                               "the weights)")
    else:
        for int8 in (False, True):
            tick("LiteRT int8" if int8 else "LiteRT")
            try:
                engines.append(LiteRTEngine(case, weights, work, int8=int8))
            except Exception as e:  # noqa: BLE001
                result["notes"].append(f"LiteRT{' int8' if int8 else ''}: {type(e).__name__}: "
                                       f"{str(e).splitlines()[0][:200]}")


def _onnx_input_axes(onnx_path: Path) -> str:
    """The data input's axes as rnnedge's converter reads them (from a float conversion)."""
    from rnnedge.converter import to_network

    return to_network(onnx_path).input.axes


def _rnnedge_extras(
    eng: RnnedgeEngine,
    blob: Path,
    r: dict[str, Any],
    config: Config,
    tools: Tools,
    tick: Callable[[str], None],
) -> None:
    """Blob size, weight bytes, the bandwidth floor and the C-level step time of one rnnedge blob."""
    model = eng.model
    r["blob_bytes"] = blob.stat().st_size
    r["weight_bytes"] = int(model.weight_bytes)
    r["state_bytes"] = int(model.state_bytes(1))
    tick(f"{eng.name} bandwidth")
    bw = tools.bandwidth(r["weight_bytes"])
    r["bandwidth"] = bw
    r["floor_us"] = r["weight_bytes"] / bw["gbps"] / 1e3
    r["target_us"] = 1.2 * r["floor_us"] + 0.4
    if model.streamable and config.c_bench and tools.exe is not None:
        tick(f"{eng.name} C step")
        r["c_step"] = c_step_time(tools.exe, blob, config.steps, config.warmup)
    if model.streamable:
        tick(f"{eng.name} Python around the C call")
        r["cffi"] = cffi_overhead(model.stream(1), rounds=config.cffi_rounds)


def _peak_memory(
    case: Case,
    engines: list[Engine],
    blobs: dict[str, Path],
    onnx_path: Path | None,
    result: dict[str, Any],
    tick: Callable[[str], None],
) -> None:
    shape = json.dumps(
        list(to_graph(np.zeros((1, 1, case.features), _F32), engines[0].in_axes).shape)
    )
    for eng in engines:
        tick(f"{eng.name} peak memory")
        r = result["engines"][eng.name]
        try:
            if isinstance(eng, RnnedgeEngine):
                r["rss_mib"] = peak_rss_mib("rnnedge", str(blobs[eng.model.quant].resolve()), shape)
            elif eng.name == "ort":
                r["rss_mib"] = peak_rss_mib("ort", str(Path(onnx_path).resolve()))
            elif eng.name == "torch":
                spec = [case.cell, case.features, case.hidden, case.layers, case.bidirectional]
                r["rss_mib"] = peak_rss_mib("torch", json.dumps(spec))
        except (RnnedgeError, subprocess.TimeoutExpired) as e:
            result["notes"].append(f"{eng.name}: peak memory not measured: {e}")


def run_benchmark(
    cases: Sequence[Case], config: Config, work: Path | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run every case; returns {"machine", "config", "harness", "tools", "cases"} ready for JSON."""
    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rnnedge-bench-")))
        tools, root, cflags = Tools(), source_root(), None
        with contextlib.suppress(RnnedgeError):
            cflags = " ".join(extension_cflags(root)) if root else None
        if config.c_bench:
            try:
                tools.exe = build_c_bench(work / "c", root)
            except RnnedgeError as e:
                tools.exe_note = f"C step time not measured: {e}"
        bar = Progress(len(cases), "rnnedge bench", enabled=progress)
        results = {
            "machine": machine(),
            "config": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()
            },
            "harness": {"step_loop_overhead": harness_overhead()},
            "tools": {
                "c_bench": str(tools.exe) if tools.exe else None,
                "note": tools.exe_note,
                "extension_cflags": cflags,
            },
            "cases": [],
        }
        if config.rss:
            results["python_rss_mib"] = peak_rss_mib("python")
        for case in cases:
            results["cases"].append(bench_case(case, config, work / case.name, tools, bar))
            bar.update(case.name)
        bar.close()
        return results


def _config(args: argparse.Namespace) -> Config:
    config = Config.quick() if args.quick else Config()
    if args.steps is not None:
        if args.steps < 10:
            raise InputError(f"--steps {args.steps}: give at least 10")
        config = replace(config, steps=args.steps)
    if args.no_rss:
        config = replace(config, rss=False)
    if args.no_torch:
        config = replace(config, torch=False)
    if args.no_peers:
        config = replace(config, peers=False)
    return config


def main(argv: Sequence[str] | None = None) -> int:
    """tools/bench.py: the full benchmark; writes bench.md, bench.json, bench.png to --out."""
    parser = argparse.ArgumentParser(prog="tools/bench.py", description=main.__doc__)
    parser.add_argument("--out", default="bench-out", help="output directory (default bench-out/)")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--keep", metavar="DIR", help="keep the built ONNX models and blobs in DIR")
    parser.add_argument(
        "--docs",
        metavar="FILE",
        help="also put the tables into FILE between its bench-results markers",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 200 steps, T = 100 only, no peak memory, no PyTorch",
    )
    parser.add_argument("--steps", type=int, help="timed steps per engine (default 2000)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON here")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument(
        "--no-torch", action="store_true", help="leave PyTorch out even if installed"
    )
    parser.add_argument(
        "--no-peers", action="store_true", help="leave tract and LiteRT out even if installed"
    )
    parser.add_argument(
        "--blob",
        metavar="MODEL.rne",
        help="benchmark this .rne blob (its own format) instead of the cases",
    )
    parser.add_argument(
        "--onnx",
        metavar="MODEL.onnx",
        help="with --blob: the ONNX model it came from: adds onnxruntime (step-wise and "
        "sequence) and checks the outputs against it",
    )
    parser.add_argument(
        "--conv",
        action="store_true",
        help="the conv front ends instead (issue 13): per step against the multiply-add floor "
        "and onnxruntime, f32 and int8; --cases picks among them; writes conv.md and conv.json",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true",
        help="no progress bar on stderr (there is none when stderr is not a terminal)",
    )
    args = parser.parse_args(argv)
    if args.conv:
        return _conv_main(args)
    cases = standard_cases()
    if args.list:
        print("\n".join(c.name for c in cases))
        return 0
    try:
        if args.blob:
            if args.cases:
                raise InputError("--blob and --cases: give one of them")
            cases = [blob_case(Path(args.blob), Path(args.onnx) if args.onnx else None)]
        elif args.onnx:
            raise InputError(f"--onnx {args.onnx}: give the blob converted from it with --blob")
        else:
            cases = select_cases(cases, args.cases)
        results = run_benchmark(
            cases, _config(args), Path(args.keep) if args.keep else None, progress=not args.quiet
        )
        for line in write_outputs(results, Path(args.out)):
            print(line if line.startswith("matplotlib") else f"wrote {line}")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")
        if args.docs:
            update_docs(Path(args.docs), markdown(results).replace("## rnnedge benchmark\n\n", ""))
            print(f"updated {args.docs}")
    except RnnedgeError as e:
        print(f"tools/bench.py: error: {e}", file=sys.stderr)
        return 1
    print(markdown(results))
    return 0


def _conv_main(args: argparse.Namespace) -> int:
    """`tools/bench.py --conv`: the conv front ends (tools/bench/conv.py)."""
    from .conv import conv_cases, conv_markdown, run_conv, select_conv_cases
    from .report import CONV_BEGIN, CONV_END

    if args.list:
        print("\n".join(c.name for c in conv_cases()))
        return 0
    try:
        if args.blob or args.onnx:
            raise InputError("--conv runs its own cases: --blob / --onnx are for the recurrent ones")
        config = _config(args)
        results = run_conv(select_conv_cases(args.cases), steps=config.steps,
                           warmup=config.warmup, work=Path(args.keep) if args.keep else None)  # fmt: skip
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        text = conv_markdown(results)
        (out / "conv.md").write_text(text + "\n")
        (out / "conv.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
        print(f"wrote {out / 'conv.md'}\nwrote {out / 'conv.json'}")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")
        if args.docs:
            update_docs(Path(args.docs), text, (CONV_BEGIN, CONV_END))
            print(f"updated {args.docs}")
    except RnnedgeError as e:
        print(f"tools/bench.py: error: {e}", file=sys.stderr)
        return 1
    print(text)
    return 0
