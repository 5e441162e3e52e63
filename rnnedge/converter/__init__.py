"""ONNX model -> rnnedge.ir.graph.Graph (to_graph) or rnnedge.ir.layers.Network (to_network). Needs the `onnx` package (the `[convert]` extra).

    from rnnedge.converter import to_network
    net = to_network("model.onnx")      # or an onnx.ModelProto
"""

from . import conv  # noqa: F401  (adds the convolutional ops to the graph converter's table)
from .dag import pair_states, to_graph
from .graph import DATA_OPS, to_network

__all__ = ["DATA_OPS", "pair_states", "to_graph", "to_network"]
