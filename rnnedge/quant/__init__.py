"""From a float Network to an integer QNetwork (docs/quantization.md), by concern: `arith`
(scales, multipliers and integer parameters per op, bit-exact with rnnedge/fixedpoint.py and the
C kernels), `calibrate` (ranges from representative data), `policy` (`quantize_network`: the
accuracy bar and the int8 / int16 mixed precision), `graph` (`quantize_graph`: the same for a
dataflow graph, docs/quantization.md section 12)."""
