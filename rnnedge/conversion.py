"""`rnnedge.convert`: ONNX file -> layer pipeline or dataflow graph -> (quantize) -> .rne blob."""

from __future__ import annotations

import io
import os
from typing import Mapping, Sequence, Union

import numpy as np

from ._version import __version__
from .blob.read import read_blob
from .blob.write import save_blob, write_blob
from .errors import BlobError, ConvertError, InputError
from .files import read_regular_file, write_atomic
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


def checked_blob(g: Graph) -> bytes:
    """The blob of graph `g`, read back as `rnnedge.load` reads it (the C loader's checks where
    the library is built): a blob this build cannot load is a ConvertError, never written."""
    data = write_blob(g)
    try:
        read_blob(data, source=g.name)
    except BlobError as e:
        raise ConvertError(f"the converted graph cannot be stored as a loadable blob: {e}") from None
    return data


def graph_calibration(g: Graph, c: np.ndarray | None) -> np.ndarray | None:
    """Calibration inputs for `quantize_graph`: as the user gives them, in the ONNX input's layout
    (a step function's calls stacked on a new first axis T, as `Model.run` takes them), except
    token ids without a feature axis ([B, T] or [T, B]), which become run_graph's [T, B, 1]."""
    if c is None:
        return None
    axes = g.input_spec.axes
    if g.values[g.input].dtype == "s32" and c.ndim == len(axes) and "F" not in axes:
        from .reference import graph_rows

        return graph_rows(c, axes)
    return c


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
    inputs: Mapping[str, str] | None = None,
) -> Converted:
    """Convert an ONNX model, or a Keras model file (.keras, .h5: docs/keras.md, no TensorFlow
    needed), and, if `out_path` is given, write it as a .rne blob.

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
    inputs: what the signal input's axes are, by name, when its shape leaves it open: one item
    per axis, T (time), B (batch), a number (a per-step axis of that size) or F (a per-step axis
    of the graph's size), e.g. {"input": "T,576"} for [sequence_length, 576] windows, or
    {"input": "B,576"} for a step function's [batch, sequence] input of 576-sample windows (the
    size is written into the input's shape first: a Shape of it folds). Without it the converter
    guesses (a 2-axis input whose first axis reaches a recurrent node's time axis is [T, F]).
    Returns the Network (f32) or the QNetwork (integer formats) that was written. A model that
    is no straight pipeline (residuals, gates, step functions, token ids, ...) converts to a
    dataflow `Graph` (rnnedge.converter.to_graph; integer formats: rnnedge.quant.graph.
    quantize_graph, calibration as above, a step function's calls stacked on a new first axis),
    written as a blob of format version 2 (docs/graph.md) and returned.

    The blob goes to a temporary file renamed into place, so a failed conversion never leaves a
    half-written file nor replaces an existing one. Needs the `onnx` package (and `h5py` for a
    Keras file: the `[keras]` extra).
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
        from .converter.keras import is_keras_file, keras_to_model
        from .converter.tf2onnx_loop import LoopNotACell
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise InputError(
            f"converting needs the onnx package ({e}); install it with pip install 'rnnedge[convert]'"
        ) from None
    keras = is_keras_file(onnx_path)
    graph: Graph | None = None
    try:
        if keras:
            if fixed or state or inputs:
                raise InputError("fixed, state and inputs apply to ONNX models, not to a Keras "
                                 "model file")
            model = keras_to_model(onnx_path, name=name)
            if isinstance(model, Graph):
                graph = model
            else:
                net = model
        elif state:
            raise ConvertError("state pairs given: a step function")
        else:
            model = to_network(onnx_path, name=name, fixed=fixed, inputs=inputs)
            if isinstance(model, Graph):  # a tf2onnx Bidirectional merge_mode "mul"
                graph = model
            else:
                net = model
    except ConvertError as e:
        if keras:
            raise  # the Keras importer's own error, naming the layer
        # not a straight pipeline: the dataflow graph (its own error, naming the node, if not;
        # but a Loop only the pipeline reads is better explained by what did not match in it)
        try:
            graph = to_graph(onnx_path, name=name, fixed=fixed, state=state, inputs=inputs)
        except ConvertError:
            if isinstance(e, LoopNotACell):
                raise e from None
            raise
    if graph is not None:
        graph.producer = f"{graph.producer or 'an unnamed exporter'} via rnnedge {__version__}"
        qgraph = graph
        if quant != "f32":
            from .quant.graph import quantize_graph  # numpy work: only for an integer format

            qgraph = quantize_graph(
                graph, quant, graph_calibration(graph, load_calibration(calibration)),
                percentile=percentile, strict=strict_int8,
            )  # fmt: skip
        if out_path is not None:
            write_atomic(out_path, checked_blob(qgraph))
        return qgraph
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
