"""rnnedge: a small, fast runtime for recurrent networks on edge hardware.

    import rnnedge
    rnnedge.convert("model.onnx", "model.rne")
    model = rnnedge.load("model.rne")
    y = model.run(x)                 # whole sequences, in the ONNX graph's own layout
    s = model.stream(batch=1)
    y_t = s.step(x_t)                # one timestep; state kept between calls
"""

from ._version import __version__
from .conversion import convert
from .errors import (
    BlobError,
    ConvertError,
    InputError,
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
    "NotStreamableError",
    "RnnedgeError",
    "Stream",
    "StreamBusyError",
    "UnsupportedOpError",
    "convert",
    "load",
    "__version__",
]
