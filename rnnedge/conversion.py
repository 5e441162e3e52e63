"""`rnnedge.convert`: ONNX file -> layer list -> (quantize) -> .rne blob on disk."""

from __future__ import annotations

import os

from . import __version__
from .errors import InputError
from .format import save_blob
from .layers import Network

QUANT_FORMATS = ("f32",)


def convert(
    onnx_path: str | os.PathLike,
    out_path: str | os.PathLike | None = None,
    quant: str = "f32",
    name: str | None = None,
) -> Network:
    """Convert an ONNX model into a Network and, if `out_path` is given, write it as a .rne blob.

    The blob is written to a temporary file and renamed into place, so a failed conversion never
    leaves a half-written file nor replaces an existing one. Needs the `onnx` package.
    """
    if quant not in QUANT_FORMATS:
        raise InputError(
            f"quant={quant!r} is not a number format rnnedge writes; choose one of "
            f"{', '.join(QUANT_FORMATS)}"
        )
    try:
        from .converter import to_network
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise InputError(
            f"converting needs the onnx package ({e}); install it with pip install 'rnnedge[convert]'"
        ) from None
    net = to_network(onnx_path, name=name)
    net.quant = quant
    net.producer = f"{net.producer or 'an unnamed exporter'} via rnnedge {__version__}"
    if out_path is not None:
        save_blob(net, out_path)
    return net
