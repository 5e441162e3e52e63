"""The intermediate representation (IR): a model's layers, float and integer, and their checks.

A `Network` is a straight pipeline of float layers over a sequence of feature vectors [T, B, F]:
what the converter (rnnedge/converter/) builds from ONNX, the float reference
(rnnedge/reference.py) runs and the blob writer (rnnedge/blob/write.py) stores in f32. Weights
are kept in ONNX's layout and gate order (LSTM i,o,f,c; GRU z,r,h), float32.

A `QNetwork` is the same pipeline in integers (QDense, QRecurrent, ...): what quantization
(rnnedge/quant/) makes of a Network for the int16 / int8 formats, the integer reference
(rnnedge/fixedpoint.py) runs bit for bit and the blob writer stores. Each integer layer type sits
beside the float one it stands for; both derive from `Layer`.

Words: a *layer* is one step of this pipeline (`FloatLayer` or `IntLayer`); the blob's entry for
it is a *record* (rnnedge/blob: NodeRecord); `StateSpec.layer` is an index into the pipeline.
`hidden` is a recurrent layer's hidden size H throughout (the blob's field; ONNX's attribute is
hidden_size). `quant` names a model's number format (QUANTS), `wfmt` a layer's weight storage.

`rnnedge/ir/layers.py` holds the types (and `to_tbf` / `from_tbf`, between a graph's axis layout
and the pipeline's [T, B, F]); `rnnedge/ir/check.py` the validation: `check_layer` /
`check_network` / `check_state` (a float Network the formats can hold) and `check_qnetwork` (an
integer network against its float source), which the blob writer and the float reference call.
Needs numpy only.
"""
