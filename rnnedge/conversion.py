"""`rnnedge.convert`: ONNX file -> layer pipeline or dataflow graph -> (quantize) -> .rne blob."""

from __future__ import annotations

import io
import os
from typing import Mapping, Sequence, Union

import numpy as np

from ._version import __version__
from .blob.write import save_blob
from .errors import ConvertError, InputError
from .files import read_regular_file
from .ir.graph import Graph
from .ir.layers import QUANTS, Network, QNetwork

Converted = Union[Network, QNetwork, Graph]


def check_not_same_file(source: str | os.PathLike, output: str | os.PathLike) -> None:
    """Refuse to write the output over the source (the same path, or a link to it)."""
    try:
        same = os.path.samefile(source, output)
    except OSError:  # the output does not exist yet (or the source does not: reported later)
        return
    if same:
        raise InputError(
            f"the output {os.fspath(output)} is the model {os.fspath(source)} itself (the same file, "
            "by its path or through a link): writing it would replace the model; give another "
            "output path"
        )


def load_npy(path: str | os.PathLike, what: str = "input") -> np.ndarray:
    """One array from a .npy file, or an InputError naming the file and what it was for."""
    path = os.fspath(path)
    try:
        data = np.load(io.BytesIO(read_regular_file(path, path, InputError)), allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what} file") from None
    except (OSError, ValueError, EOFError) as e:  # EOFError: an empty or truncated file
        raise InputError(f"{path}: not a .npy array of {what} ({e or 'the file ends early'})") from None
    if not isinstance(data, np.ndarray):
        raise InputError(f"{path}: holds several arrays (.npz); give one .npy array of {what}")
    return data


def load_calibration(calibration: np.ndarray | str | os.PathLike | None) -> np.ndarray | None:
    """Calibration inputs as an array: given as one, or as the path of a .npy file."""
    if calibration is None or isinstance(calibration, np.ndarray):
        return calibration
    return load_npy(calibration, "calibration inputs")


def convert(
    onnx_path: str | os.PathLike,
    out_path: str | os.PathLike | None = None,
    quant: str = "f32",
    name: str | None = None,
    calibration: np.ndarray | str | os.PathLike | None = None,
    *,
    percentile: float = 100.0,
    strict_int8: bool = False,
    fixed: Mapping[str, Union[int, float, Sequence[Union[int, float]], np.ndarray]] | None = None,
    state: Mapping[str, str] | None = None,
) -> Converted:
    """Convert an ONNX model and, if `out_path` is given, write it as a .rne blob.

    quant: "f32", "int16" or "int8" (docs/quantization.md). calibration: representative inputs
    in the ONNX model's input layout (an array, or a .npy path) from which the integer formats
    measure the input and state ranges; without it they fall back to documented defaults and warn.
    percentile: the percentile of |values| taken as a range (100 = the maximum). strict_int8: with
    "int8", refuse a layer that misses the accuracy bar instead of keeping it at int16 weights.
    fixed: graph inputs made constants before conversion, by name, e.g. {"sr": 16000} for a
    model whose sample-rate input selects a branch: each value (an int or float, or a list of
    them) must fit the input's declared element type and shape; an `If` whose condition then
    folds takes its branch. A name that is not a graph input, or a value that does not fit,
    raises InputError; an `If` still depending on an unfixed input is refused by name.
    state: a step function's state inputs paired with the outputs that carry their next value,
    e.g. {"h": "hn"} (pairs the names or shapes make plain are found without it; docs/converter.md).
    Returns the Network (f32) or the QNetwork (integer formats) that was written. A model that
    is no straight pipeline (residuals, gates, step functions, token ids, ...) converts to a
    float dataflow `Graph` (rnnedge.converter.to_graph), returned when `out_path` is None and
    quant is "f32"; writing it needs blob format version 2 (not yet in this build).

    The blob goes to a temporary file renamed into place, so a failed conversion never leaves a
    half-written file nor replaces an existing one. Needs the `onnx` package.
    """
    if quant not in QUANTS:
        raise InputError(
            f"quant={quant!r} is not a number format rnnedge writes; choose one of "
            f"{', '.join(QUANTS)}"
        )
    if quant == "f32" and (calibration is not None or strict_int8):
        raise InputError("calibration and strict_int8 apply to the integer formats, not to f32")
    if out_path is not None and isinstance(onnx_path, (str, os.PathLike)):
        check_not_same_file(onnx_path, out_path)
    try:
        from .converter import to_graph, to_network
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise InputError(
            f"converting needs the onnx package ({e}); install it with pip install 'rnnedge[convert]'"
        ) from None
    try:
        if state:
            raise ConvertError("state pairs given: a step function")
        net = to_network(onnx_path, name=name, fixed=fixed)
    except ConvertError:
        # not a straight pipeline: the dataflow graph (its own error, naming the node, if not)
        graph = to_graph(onnx_path, name=name, fixed=fixed, state=state)
        graph.producer = f"{graph.producer or 'an unnamed exporter'} via rnnedge {__version__}"
        if out_path is not None or quant != "f32":
            ops = sorted({type(n.op).__name__ for n in graph.nodes})
            raise ConvertError(
                f"{os.fspath(onnx_path) if isinstance(onnx_path, (str, os.PathLike)) else graph.name}: "
                f"converts to a dataflow graph ({len(graph.nodes)} nodes: {', '.join(ops)}), not a "
                "straight layer pipeline; writing it (and quantizing it) needs blob format version "
                "2, which this build does not write yet. rnnedge.convert(path) without an output "
                "returns the float graph (rnnedge.reference.run_graph runs it)"
                + "".join(f"; {n}" for n in graph.folded if n.startswith("state: "))
            ) from None
        return graph
    net.quant = quant
    net.producer = f"{net.producer or 'an unnamed exporter'} via rnnedge {__version__}"
    result: Converted = net
    if quant != "f32":
        from .quant.policy import quantize_network  # numpy work: only for an integer format

        result = quantize_network(
            net, quant, load_calibration(calibration), percentile=percentile, strict=strict_int8
        )
    if out_path is not None:
        save_blob(result, out_path)
    return result
