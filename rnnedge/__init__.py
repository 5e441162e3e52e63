"""rnnedge: a small, fast runtime for recurrent networks on edge hardware.

    import rnnedge
    rnnedge.convert("model.onnx", "model.rne")
    model = rnnedge.load("model.rne")
    y = model.run(x)                 # whole sequences, in the ONNX graph's own layout
    s = model.stream(batch=1)
    y_t = s.step(x_t)                # one timestep; state kept between calls

Importing rnnedge (and any of its pure-Python modules: ir, blob, quant, converter, reference,
fixedpoint, conversion) needs no compiled code; the C library (rnnedge._rnnedge) is imported
when the first Model is made, and a missing build is a NotBuiltError naming the fix.
"""

from ._clib import build_info
from ._version import __version__
from .conversion import convert
from .errors import (
    BlobError,
    ConvertError,
    InputError,
    NotBuiltError,
    NotStreamableError,
    RnnedgeError,
    StreamBusyError,
    UnsupportedOpError,
)
from .model import Model, Stream, load


__all__ = [
    "BlobError",
    "ConvertError",
    "InputError",
    "Model",
    "NotBuiltError",
    "NotStreamableError",
    "RnnedgeError",
    "Stream",
    "StreamBusyError",
    "UnsupportedOpError",
    "build_info",
    "convert",
    "load",
    "__version__",
]
