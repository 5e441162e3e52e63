"""ONNX model -> rnnedge.ir.layers.Network. Needs the `onnx` package (the `[convert]` extra).

    from rnnedge.converter import to_network
    net = to_network("model.onnx")      # or an onnx.ModelProto
"""

from .graph import DATA_OPS, to_network

__all__ = ["DATA_OPS", "to_network"]
