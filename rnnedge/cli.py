"""The `rnnedge` command: argparse subcommands, one function each.

Exit status 0 on success, 1 on a user error (one line on stderr, no traceback unless --debug);
`verify` exits 1 on FAIL and 2 when it cannot compare. A closed output pipe (`| head -1`) ends a
command quietly with status 141, as SIGPIPE would.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any, Callable, Sequence

from ._version import __version__
from .console import printable, say
from .errors import InputError, RnnedgeError
from .export_c import add_arguments as export_c_arguments
from .measure import WARMUP


def _fmt_bytes(n: int) -> str:
    return f"{n} B" if n < 10 * 1024 else f"{n / 1024:.1f} KiB"


def cmd_convert(args: argparse.Namespace) -> int:
    from .conversion import convert
    from .blob.read import read_blob
    from .blob.show import describe

    out = args.output or os.path.splitext(args.model)[0] + ".rne"
    result = convert(
        args.model,
        out,
        quant=args.quant,
        name=args.name,
        calibration=args.calib,
        percentile=args.percentile,
        strict_int8=args.strict_int8,
        fixed=_fixed_args(args.fix),
        state=_state_args(args.state),
        inputs=_input_args(args.input),
    )
    with open(out, "rb") as f:
        data = f.read()
    say(f"wrote {out} ({_fmt_bytes(len(data))}, {args.quant}) from {args.model}")
    say(describe(read_blob(data)))
    folded = result.folded if args.quant == "f32" else result.source.folded
    if folded:
        say(f"folded away ({len(folded)}): " + ", ".join(folded))
    if args.quant != "f32":
        from .quant.policy import describe as describe_quantized

        say(describe_quantized(result))
    return 0


def _named(items: list[str] | None, flag: str, form: str, example: str,
           value: Callable[[str, str], Any] = lambda text, raw: raw) -> dict | None:
    """Repeated NAME=VALUE options (--fix, --state, --input) as a mapping, each name once; `form`
    and `example` name what is expected (NAME=VALUE, sr=16000); value(text, raw) reads a VALUE."""
    if not items:
        return None
    named: dict = {}
    for text in items:
        name, sep, raw = text.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not name or not raw:
            raise InputError(f"{flag} {text!r}: expected {form}, e.g. {flag} {example}")
        if name in named:
            raise InputError(f"{flag} {name}=... is given twice")
        named[name] = value(text, raw)
    return named


def _fixed_args(items: list[str] | None) -> dict | None:
    """The repeated --fix NAME=VALUE options as convert's `fixed` mapping."""
    if not items:  # the converter (and onnx) only when the option is given
        return None
    from .converter.fixed import fixed_value

    return _named(items, "--fix", "NAME=VALUE", "sr=16000", fixed_value)


def _state_args(items: list[str] | None) -> dict[str, str] | None:
    """The repeated --state INPUT=OUTPUT options as convert's `state` mapping."""
    return _named(items, "--state", "INPUT=OUTPUT", "h=hn")


def _input_args(items: list[str] | None) -> dict[str, str] | None:
    """The repeated --input NAME=AXES options as convert's `inputs` mapping (the axes are read by
    the converter, rnnedge.converter.inputs.parse_axes)."""
    return _named(items, "--input", "NAME=AXES", "input=T,576")


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np

    model = _load_model(args.model)
    x = _load_npy(args.input)
    if args.stream:
        stream = model.stream(batch=_stream_batch(model, x))
        axes = _run_axes(model)
        t_axis = axes.index("T")
        steps = [stream.step(np.take(x, t, axis=t_axis)) for t in range(x.shape[t_axis])]
        y = np.stack(steps, axis=_stream_time_axis(axes, model.output_spec["axes"]))
        final = stream.state
    elif args.state_out:
        y, final = model.run(x, return_state=True)
    else:
        y = model.run(x)
    if args.state_out:  # the graph's other outputs: its final states, by Stream.state's names
        with open(args.state_out, "wb") as f:  # np.savez would add ".npz" to another suffix
            np.savez(f, **final)
        shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in final.items()) or "none"
        print(f"wrote {args.state_out}: the final state ({shapes})")
    if args.output:
        np.save(args.output, y)
        print(f"wrote {args.output}: {y.dtype} {list(y.shape)}")
    else:
        with np.printoptions(precision=5, suppress=True, threshold=200):
            print(y)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0 on PASS, 1 on FAIL, 2 (set by the parser) for what cannot be compared."""
    from .errors import VerifyError
    from .verify import verify

    try:
        x = _load_npy(args.input) if args.input else None
    except RnnedgeError as e:
        raise VerifyError(str(e), "input") from None
    report = verify(args.model, args.onnx, x, long_steps=args.long_steps,
                    state=_state_args(args.state), tol=_tol_args(args.tol))  # fmt: skip
    if args.input:
        report.data = args.input
    print(printable(report.table()))
    return 0 if report.passed else 1


def _tol_args(items: list[str] | None) -> float | dict[str, float] | None:
    """The repeated --tol options: one number (the blob's format) or FORMAT=NUMBER per format."""
    if not items:
        return None
    from .errors import VerifyError
    from .quant.policy import BARS

    plain: float | None = None
    per: dict[str, float] = {}
    for text in items:
        name, sep, value = text.rpartition("=")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not number > 0 or number == float("inf") or (sep and name.strip() not in BARS):
            raise VerifyError(f"--tol {text!r}: expected a positive number (the max error over the "
                              "float output's range) or FORMAT=NUMBER with FORMAT one of "
                              f"{', '.join(BARS)}", "input")  # fmt: skip
        if sep:
            per[name.strip()] = number
        else:
            plain = number
    if plain is not None and per:
        raise VerifyError("--tol: give either one number or FORMAT=NUMBER options, not both", "input")
    return plain if plain is not None else per


def cmd_export_c(args: argparse.Namespace) -> int:
    from .export_c import run

    return run(args)


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from .errors import InputError, NotStreamableError
    from .measure import PLOT_MISSING, latency_summary, machine, module_available, step_times
    from .model import Model

    if args.steps < 10:
        raise InputError(f"--steps {args.steps}: give at least 10")
    if args.plot and not module_available("matplotlib"):
        raise InputError(PLOT_MISSING)  # before the work, not after it
    data = _read_blob_file(args.model)
    model = Model.from_bytes(data, source=args.model)
    if not model.streamable:
        raise NotStreamableError(
            f"{args.model}: a layer reads the sequence backwards (bidirectional or "
            "direction=reverse), so Stream.step cannot run it; time Model.run on whole sequences"
        )
    us = step_times(model, args.steps, WARMUP)
    r = latency_summary(us, WARMUP)
    host = machine()
    if args.plot:
        from .measure import plot_step_times

        plot_step_times(us, args.plot, f"{os.path.basename(args.model)}: {model.name}, {model.quant}, "
                        f"batch 1, {len(us)} steps; {host['cpu']} ({host['arch']})")
    if args.json:
        sizes = {"weight_bytes": model.weight_bytes, "state_bytes": model.state_bytes(1)}
        about = {"model": args.model, "name": model.name, "format": model.quant, **sizes}
        print(json.dumps({**about, **r, "machine": host, **({"plot": args.plot} if args.plot else {})}))
        return 0
    say(
        f"{args.model}: {model.name}, {model.quant}, {model.in_features} inputs per step; "
        f"weights {_fmt_bytes(model.weight_bytes)}, "
        f"state {_fmt_bytes(model.state_bytes(1))} per stream"
    )
    say(
        f"Stream.step at batch 1: {r['steps']} steps timed one by one after {r['warmup']} untimed, "
        "on random standard-normal input"
    )
    rows = [
        ("median", f"{r['median_us']:.2f} us per step"),
        ("p90", f"{r['p90_us']:.2f} us per step"),
        ("steps/s", f"{r['steps_per_s']:,.0f} (the timed steps over their total time)"),
    ]
    print("\n".join(f"  {k:<8} {v}" for k, v in rows))
    say(f"machine: {host['cpu']} ({host['arch']}, {host['cores']} cores), Python {host['python']}")
    if args.plot:
        say(f"plot: {args.plot}")
    return 0


def _load_model(path: str):
    """rnnedge.load; an ONNX model given instead of a blob is refused naming `rnnedge convert`."""
    from .errors import BlobError
    from .files import onnx_instead_of_blob
    from .model import load

    try:
        return load(path)
    except BlobError:
        hint = onnx_instead_of_blob(path)
        if hint:
            raise BlobError(hint) from None
        raise


def _read_blob_file(path: str) -> bytes:
    """The bytes of a blob file for info and bench (not rnnedge.load: it would block on a FIFO)."""
    from .files import onnx_instead_of_blob, read_regular_file

    try:
        data = read_regular_file(path, path, RnnedgeError)
    except IsADirectoryError:
        raise RnnedgeError(f"{path}: is a directory, not an rnnedge blob") from None
    except OSError as e:
        raise RnnedgeError(f"{path}: cannot read: {e.strerror or e}") from None
    hint = onnx_instead_of_blob(path, data)
    if hint:
        raise RnnedgeError(hint)
    return data


def _load_npy(path: str):
    from .conversion import load_npy

    return load_npy(path, "input")


def _run_axes(model) -> str:
    """The axes of Model.run's input: the graph input's; a step function's (no time axis) with
    its calls stacked on a new first axis T."""
    axes = model.input_spec["axes"]
    return axes if "T" in axes else "T" + axes


def _stream_time_axis(in_axes: str, out_axes: str) -> int:
    """Where `run --stream` stacks the step outputs: the output's own time axis; for an output
    without one (many-to-one: one output per step), where the input has it, before the first
    output axis that follows T in the input (batch-first input [B, T, F] -> [B, T, C])."""
    if "T" in out_axes:
        return out_axes.index("T")
    after = in_axes[in_axes.index("T") + 1 :]
    return next((k for k, a in enumerate(out_axes) if a in after), len(out_axes))


def _stream_batch(model, x) -> int:
    axes = _run_axes(model)
    if x.ndim != len(axes):
        raise RnnedgeError(
            f"the input has {x.ndim} axes; the model takes {len(axes)} ({axes}: T time, B batch, "
            "F features)"
        )
    return int(x.shape[axes.index("B")]) if "B" in axes else 1


def cmd_info(args: argparse.Namespace) -> int:
    from .blob.read import read_blob
    from .blob.show import describe

    data = _read_blob_file(args.model)
    blob = read_blob(data, verify_crc=False, source=args.model)
    say(f"{args.model}: {_fmt_bytes(len(data))}")
    say(describe(blob))
    if not blob.crc_ok:
        raise RnnedgeError(f"{args.model}: checksum mismatch: the blob is corrupt")
    from .blob.check import available

    if available():  # the sizes are the C library's (docs/c-api.md: size static buffers from them)
        from .model import Model

        model = Model.from_bytes(data, source=args.model)
        say(f"per stream of batch 1: state {model.state_bytes(1)} B, step scratch "
            f"{model.scratch_bytes(1, 1)} B, scratch of a 100-step rne_run "
            f"{model.scratch_bytes(1, 100)} B")
    else:
        say("per stream: state and scratch sizes not shown: they are the C library's "
            "(rne_state_size, rne_scratch_size), and its Python module rnnedge._rnnedge is not built")
    return 0


class _BuildInfo(argparse.Action):
    """`rnnedge --build-info`: what the installed C library was built with, then exit (as
    --version does; exit 1 with one line if the compiled module is missing)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # type: ignore[no-untyped-def]
        from ._clib import build_info

        try:
            info = build_info()
        except RnnedgeError as e:
            parser.exit(1, printable(f"rnnedge: error: {e}", newlines=False) + "\n")
        width = max(len(k) for k in info)
        sys.stdout.write("".join(f"{k:<{width}}  {v}\n" for k, v in info.items()))
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnedge",
        description="Convert, inspect and run recurrent networks on edge hardware.",
    )
    parser.add_argument("--version", action="version", version=f"rnnedge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "--build-info",
        action=_BuildInfo,
        nargs=0,
        help="print the SIMD kernels (NEON, AVX2, ...) and compiler flags the C library was built "
        "with, and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("convert", help="convert an ONNX model to a .rne blob")
    p.add_argument("model", help="the ONNX model file, or a Keras .keras / .h5 file (docs/keras.md)")
    p.add_argument("-o", "--output", help="the .rne file to write (default: MODEL with .rne)")
    p.add_argument(
        "--quant", default="f32", help="number format: f32 (default), int16 or int8 (integer-only kernels)"
    )
    p.add_argument("--name", help="model name stored in the blob (default: the graph's name)")
    p.add_argument(
        "--calib",
        metavar="CALIB.npy",
        help="representative inputs (the ONNX input's layout) to calibrate int16/int8 ranges",
    )
    p.add_argument(
        "--percentile",
        type=float,
        default=100.0,
        help="percentile of |values| taken as a calibrated range (default 100: the maximum)",
    )
    p.add_argument(
        "--strict-int8",
        action="store_true",
        help="with --quant int8, refuse a layer that misses the accuracy bar instead of keeping it at int16",
    )
    p.add_argument(
        "--fix",
        action="append",
        metavar="NAME=VALUE",
        help="make graph input NAME the constant VALUE (a number, or a list: 1,2,3) before converting, "
        "e.g. --fix sr=16000; an If it decides takes its branch (repeatable)",
    )
    p.add_argument(
        "--state",
        action="append",
        metavar="INPUT=OUTPUT",
        help="a step function's state: graph input INPUT takes the value output OUTPUT had the "
        "step before, e.g. --state h=hn (repeatable; pairs plain from names or shapes are found "
        "without it, and listed)",
    )
    p.add_argument(
        "--input",
        action="append",
        metavar="NAME=AXES",
        help="what the signal input's axes are, one item per axis: T (time), B (batch), a number "
        "(a per-step axis of that size) or F (the graph's size), e.g. --input input=T,576 for "
        "[sequence_length, 576] windows (default: guessed from the graph)",
    )
    p.add_argument(
        "-q", "--quiet", action="store_true",
        help="no progress bars on stderr (calibration, the per-layer accuracy checks; there are "
        "none when stderr is not a terminal)",
    )
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("run", help="run a .rne model on an input array")
    p.add_argument("model", help="the .rne file")
    p.add_argument("--input", required=True, metavar="X.npy", help="input in the ONNX input's layout")
    p.add_argument("-o", "--output", metavar="Y.npy", help="write the output here (default: print it)")
    p.add_argument("--stream", action="store_true", help="step through the sequence one timestep at a time")
    p.add_argument("--state-out", metavar="STATE.npz",
                   help="also write the final state (the graph's other outputs: an LSTM's Y_h and Y_c, a "
                   "step function's new state) by the names and shapes Stream.state gives")  # fmt: skip
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "verify",
        help="compare a .rne model with its ONNX model run in float by onnxruntime: PASS or FAIL",
        description="Run a .rne blob and its ONNX model (onnxruntime, float) on the same input and "
        "hold the error to the bar of the blob's number format. Exit status 0 PASS, 1 FAIL, 2 "
        "when the two cannot be compared (one line naming the side at fault).",
    )
    p.add_argument("model", help="the .rne file (any number format)")
    p.add_argument("onnx", help="the ONNX model it was converted from, or its .keras / .h5 file (Keras then runs "
                   "it: needs tensorflow-cpu)")
    p.add_argument("--input", metavar="X.npy", help="input in the ONNX input's layout (a step function: "
                   "its calls stacked on a new first axis T; default: random)")
    p.add_argument("--long-steps", type=int, default=2000, help="length of the drift stream (default 2000)")
    p.add_argument(
        "--state",
        action="append",
        metavar="INPUT=OUTPUT",
        help="a step function's state pairs as given to convert (onnxruntime is then called once per "
        "step with its state fed back; the input's calls stacked on a new first axis T)",
    )
    p.add_argument(
        "--tol",
        action="append",
        metavar="[FORMAT=]MAX_ERROR",
        help="the bar: a max error over the float output's range, for the blob's number format "
        "(--tol 2e-3) or per format (--tol int8=2e-2, repeatable); default: the documented bars, "
        "f32 1e-5, int16 1e-3, int8 1e-2 (an int8 classifier: argmax agreement >= 99%%)",
    )
    p.add_argument(
        "-q", "--quiet", action="store_true",
        help="no progress bar on stderr (there is none when stderr is not a terminal)",
    )
    p.set_defaults(func=cmd_verify, error_status=2)

    from . import demo  # stdlib and numpy only at import

    p = sub.add_parser(
        "demo",
        help="the bundled activity classifier in f32, int16 and int8, streamed, next to onnxruntime",
    )
    demo.add_arguments(p)
    p.set_defaults(func=demo.run)

    p = sub.add_parser(
        "bench",
        help="time Stream.step of a .rne model: median and p90 us per step, steps/s",
        description="Time Stream.step of a .rne model at batch 1, one call at a time, on random "
        "standard-normal input: median and p90 microseconds per step and steps per second. "
        "Needs neither onnxruntime nor a compiler.",
        epilog="The comparison with onnxruntime and PyTorch (sequence mode, C step time, memory) is "
        "the benchmark of a source checkout: python tools/bench.py --blob MODEL.rne --onnx "
        "MODEL.onnx (docs/benchmarks.md).",
    )
    p.add_argument("model", help="the .rne file")
    p.add_argument(
        "--steps", type=int, default=2000, help=f"timed steps (default 2000, after {WARMUP} untimed)"
    )
    p.add_argument(
        "--json", action="store_true", help="print the figures as one JSON object instead of the table"
    )
    p.add_argument(
        "--plot", metavar="OUT.png", help="also draw every timed step and their histogram into a PNG "
        "(needs matplotlib: pip install 'rnnedge[plot]')",
    )
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "export-c",
        help="write a .rne blob as a C header for firmware (aligned const array, sizes as #defines)",
    )
    export_c_arguments(p)  # model, -o/--output, --symbol, --section
    p.set_defaults(func=cmd_export_c)

    p = sub.add_parser("info", help="describe a .rne blob without running it")
    p.add_argument("model", help="the .rne file")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = message.for_cli() if hasattr(message, "for_cli") else message  # CalibrationWarning
        print(printable(f"rnnedge {args.command}: warning: {text}", newlines=False), file=sys.stderr)

    warnings.showwarning = show
    terminate = _on_termination()
    try:
        if getattr(args, "quiet", False):
            from .progress import quiet_progress

            with quiet_progress():
                status = func(args)
        else:
            status = func(args)
        sys.stdout.flush()  # inside the try: a reader that went away shows here for short output
        return status
    except BrokenPipeError:  # the reader went away (rnnedge info X.rne | head -1): stop quietly
        _silence_stdout()
        return 128 + 13  # as a shell reports a process ended by SIGPIPE
    except (RnnedgeError, OSError) as e:
        if args.debug:
            raise
        message = str(e) if isinstance(e, RnnedgeError) else f"{e.filename or ''}: {e.strerror or e}"
        print(printable(f"rnnedge {args.command}: error: {message}", newlines=False), file=sys.stderr)
        return getattr(args, "error_status", 1)
    except KeyboardInterrupt:
        return 130
    finally:
        terminate()


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's flush at exit does not fail again on
    the closed pipe (and print "Exception ignored ... BrokenPipeError")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor behind sys.stdout (a test's capture)
        pass


def _on_termination() -> Callable[[], None]:
    """While a command runs, SIGTERM and SIGHUP (where they have their default action: an ignored
    SIGHUP under nohup stays ignored) raise SystemExit(128 + signal) as SIGINT raises
    KeyboardInterrupt, so that a file being written is removed (files.write_atomic) rather than
    left behind. Returns the function that restores the previous handlers."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:  # not under nohup, not handled
            previous[sig] = signal.signal(sig, stop)

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


if __name__ == "__main__":
    sys.exit(main())
