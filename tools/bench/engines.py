"""The engines the benchmark times: rnnedge (the Python API), onnxruntime (sequence mode, stepped
with `run()` and with IO binding, its own int8), PyTorch, tract and LiteRT (float and
dynamic-range int8) where installed. Each runs a case's model step by step
and in sequence mode, its inputs prepared once outside the timed loop.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rnnedge.errors import RnnedgeError
from rnnedge.ir.layers import to_tbf
from rnnedge.ort_step import SteppedSession, expose_state, ort_session

from .cases import GATES, Case, LayerWeights, _F32, to_graph

Step = Callable[[Any], Any]


class Engine:
    """One way to run a model. `stepper()` gives a fresh step function (initial state); inputs are
    prepared once, outside the timed loop, in the form the engine takes."""

    name = "engine"
    streamable = True

    def step_inputs(self, x_tbf: np.ndarray) -> list:
        raise NotImplementedError

    def stepper(self) -> Step:
        raise NotImplementedError

    def step_output(self, y: Any) -> np.ndarray:
        raise NotImplementedError

    def seq_input(self, x_tbf: np.ndarray) -> Any:
        raise NotImplementedError

    def run(self, x: Any) -> Any:
        raise NotImplementedError

    def seq_output(self, y: Any) -> np.ndarray:
        raise NotImplementedError

    def context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


class RnnedgeEngine(Engine):
    def __init__(self, model) -> None:
        self.model = model
        self.name = f"rnnedge-{model.quant}"
        self.streamable = model.streamable
        self.in_axes = model.input_spec["axes"]
        self.out_axes = model.output_spec["axes"]

    def step_inputs(self, x_tbf: np.ndarray) -> list:
        shape = (1, x_tbf.shape[2]) if "B" in self.in_axes else (x_tbf.shape[2],)
        return [np.ascontiguousarray(x_tbf[t].reshape(shape)) for t in range(len(x_tbf))]

    def stepper(self) -> Step:
        return self.model.stream(1).step

    def stepper_into(self) -> Step:
        """Stream.step_into with one output array for every step (the step's result is out)."""
        stream = self.model.stream(1)
        out = np.empty_like(stream.step(self.step_inputs(np.zeros((1, 1, self.model.in_features),
                                                                  np.float32))[0]))  # fmt: skip
        stream.reset()
        into = stream.step_into
        return lambda x: into(x, out)

    def step_output(self, y: np.ndarray) -> np.ndarray:
        return to_tbf(y, self.out_axes.replace("T", ""))

    def seq_input(self, x_tbf: np.ndarray) -> np.ndarray:
        return to_graph(x_tbf, self.in_axes)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.model.run(x)

    def seq_output(self, y: np.ndarray) -> np.ndarray:
        return to_tbf(y, self.out_axes)


class OrtEngine(Engine):
    """onnxruntime: `seq` on the model as it is, `step` on expose_state(model) with the state fed
    back by hand; `iobinding=True` steps through pre-bound buffers (two bindings used in turn, so
    each step's output state is the next step's input with no copy)."""

    def __init__(
        self, name: str, model, in_axes: str, out_axes: str, features: int, iobinding: bool = False
    ) -> None:
        self.name, self.iobinding, self.features = name, iobinding, features
        self.in_axes, self.out_axes = in_axes, out_axes
        self.session = ort_session(model)
        self.x_name = self.session.get_inputs()[0].name
        self.y_name = self.session.get_outputs()[0].name
        try:
            self.stepped = SteppedSession(model)
        except RnnedgeError:
            self.streamable, self.stepped = False, None
        else:
            self.step_session, self.states = self.stepped.session, self.stepped.states
            self.step_x = self.stepped.x_name

    def step_inputs(self, x_tbf: np.ndarray) -> list:
        return [to_graph(x_tbf[t : t + 1], self.in_axes) for t in range(len(x_tbf))]

    def stepper(self) -> Step:
        return self._bound_stepper() if self.iobinding else self.stepped.stepper()

    def _bound_stepper(self) -> Step:
        sess = self.step_session
        probe = self.stepped.stepper()(np.zeros(self._step_shape(), _F32))
        x_buf = np.zeros(self._step_shape(), _F32)
        y_buf = np.zeros(probe.shape, _F32)
        bufs = [[s.initial.copy() for s in self.states], [s.initial.copy() for s in self.states]]
        bindings = []
        for k in (0, 1):
            b = sess.io_binding()
            _bind(b.bind_input, self.step_x, x_buf)
            _bind(b.bind_output, self.y_name, y_buf)
            for s, a, out in zip(self.states, bufs[k], bufs[1 - k]):
                _bind(b.bind_input, s.input, a)
                _bind(b.bind_output, s.output, out)
            bindings.append(b)
        run, turn = sess.run_with_iobinding, [0]

        def step(x: np.ndarray) -> np.ndarray:
            x_buf[...] = x
            run(bindings[turn[0]])
            turn[0] ^= 1
            return y_buf  # the same buffer every step, as IO binding is used

        step.buffers = bufs  # type: ignore[attr-defined]  # ORT holds raw pointers into these
        return step

    def _step_shape(self) -> tuple[int, ...]:
        return to_graph(np.zeros((1, 1, self.features), _F32), self.in_axes).shape

    def step_output(self, y: np.ndarray) -> np.ndarray:
        return to_tbf(y, self.out_axes)

    def seq_input(self, x_tbf: np.ndarray) -> np.ndarray:
        return to_graph(x_tbf, self.in_axes)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.y_name], {self.x_name: x})[0]

    def seq_output(self, y: np.ndarray) -> np.ndarray:
        return to_tbf(y, self.out_axes)


def _bind(bind: Callable, name: str, a: np.ndarray) -> None:
    bind(name, "cpu", 0, np.float32, list(a.shape), a.ctypes.data)


class TorchEngine(Engine):
    """PyTorch nn.LSTM / nn.GRU holding the same weights (ONNX gate order mapped to PyTorch's)."""

    ORDER = {"lstm": [0, 2, 3, 1], "gru": [1, 0, 2]}  # ONNX i,o,f,c -> i,f,g,o; z,r,h -> r,z,n

    def __init__(self, case: Case, weights: list[LayerWeights]) -> None:
        import torch

        torch.set_num_threads(1)
        self.torch = torch
        self.name = "torch"
        self.streamable = not case.bidirectional
        cls = torch.nn.LSTM if case.cell == "lstm" else torch.nn.GRU
        self.module = cls(case.features, case.hidden, case.layers, bidirectional=case.bidirectional)
        order, gates, h = self.ORDER[case.cell], GATES[case.cell], case.hidden

        def reorder(a: np.ndarray) -> "torch.Tensor":
            return torch.from_numpy(
                np.ascontiguousarray(a.reshape(gates, h, *a.shape[1:])[order].reshape(a.shape))
            )

        with torch.no_grad():
            for k, w in enumerate(weights):
                for d in range(w.W.shape[0]):
                    sfx = f"_l{k}" + ("_reverse" if d else "")
                    getattr(self.module, "weight_ih" + sfx).copy_(reorder(w.W[d]))
                    getattr(self.module, "weight_hh" + sfx).copy_(reorder(w.R[d]))
                    getattr(self.module, "bias_ih" + sfx).copy_(reorder(w.B[d, : gates * h]))
                    getattr(self.module, "bias_hh" + sfx).copy_(reorder(w.B[d, gates * h :]))
        self.module.eval()

    def context(self) -> contextlib.AbstractContextManager:
        return self.torch.inference_mode()

    def step_inputs(self, x_tbf: np.ndarray) -> list:
        return [self.torch.from_numpy(x_tbf[t : t + 1].copy()) for t in range(len(x_tbf))]

    def stepper(self) -> Step:
        module, state = self.module, None

        def step(x):
            nonlocal state
            y, state = module(x, state)
            return y

        return step

    def step_output(self, y) -> np.ndarray:
        return y.numpy()

    def seq_input(self, x_tbf: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(x_tbf))

    def run(self, x):
        return self.module(x)[0]

    def seq_output(self, y) -> np.ndarray:
        return y.numpy()


def step_outputs(eng: Engine, x_tbf: np.ndarray) -> np.ndarray:
    """The engine's output at every step of x_tbf [T, B, F], from a fresh stepper, as [T, ...]."""
    step = eng.stepper()
    return np.concatenate(
        [np.array(eng.step_output(step(x)), copy=True) for x in eng.step_inputs(x_tbf)]
    )


def ort_int8_engine(
    onnx_path: Path, work: Path, case: Case, in_axes: str, out_axes: str, result: dict[str, Any]
) -> Engine:
    """onnxruntime's own int8: quantize_dynamic (int8 weights; LSTM only, GRU stays float)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = work / f"{case.name}.ort-int8.onnx"
    logging.disable(logging.WARNING)  # its advice to pre-process the model is not for us
    try:
        quantize_dynamic(onnx_path, out, weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    if not any(op.startswith("DynamicQuantize") for op in ops):
        result["notes"].append(
            "onnxruntime int8: quantize_dynamic left the model in float "
            "(onnxruntime has no int8 GRU)"
        )
    return OrtEngine("ort-int8", out, in_axes, out_axes, case.features)



class TractEngine(Engine):
    """tract (Sonos's Rust inference engine, the `tract` Python package) on the ONNX file: `step`
    on expose_state(model) with the state fed back (tract's own tensors, no numpy between
    steps), `seq` on the model as it is; each shape made concrete and optimized once, outside
    the timed calls. Its Python binding goes through tract's C API with ctypes, which a C or
    Rust caller would not pay: the figures are what a Python user of tract gets."""

    name = "tract"

    def __init__(self, onnx_path: Path, work: Path, in_axes: str, out_axes: str, features: int) -> None:
        import onnx
        import tract

        self.tract, self.onnx_path = tract, onnx_path
        self.in_axes, self.out_axes, self.features = in_axes, out_axes, features
        self.runnables: dict[tuple[int, ...], Any] = {}
        try:
            step_model, self.states = expose_state(onnx_path)
        except RnnedgeError:
            self.streamable, self.step_runnable = False, None
            return
        step_path = work / f"{onnx_path.stem}.tract-step.onnx"
        onnx.save(step_model, str(step_path))
        x_shape = to_graph(np.zeros((1, 1, features), _F32), in_axes).shape
        self.step_runnable = self._runnable(step_path, [x_shape] + [s.initial.shape for s in self.states])

    def _runnable(self, path: Path, shapes: list[tuple[int, ...]]) -> Any:
        model = self.tract.onnx().load(str(path))
        for i, shape in enumerate(shapes):
            model.set_input_fact(i, ",".join(map(str, shape)) + ",f32")
        return model.into_model().into_runnable()

    def step_inputs(self, x_tbf: np.ndarray) -> list:
        return [to_graph(x_tbf[t : t + 1], self.in_axes) for t in range(len(x_tbf))]

    def stepper(self) -> Step:
        run, state = self.step_runnable.run, [s.initial for s in self.states]

        def step(x: np.ndarray) -> Any:
            nonlocal state
            y, *state = run([x, *state])
            return y

        return step

    def step_output(self, y: Any) -> np.ndarray:
        return to_tbf(y.to_numpy(), self.out_axes)

    def seq_input(self, x_tbf: np.ndarray) -> np.ndarray:
        x = to_graph(x_tbf, self.in_axes)
        if x.shape not in self.runnables:
            self.runnables[x.shape] = self._runnable(self.onnx_path, [x.shape])
        return x

    def run(self, x: np.ndarray) -> Any:
        return self.runnables[x.shape].run([x])[0]

    def seq_output(self, y: Any) -> np.ndarray:
        return to_tbf(y.to_numpy(), self.out_axes)


class LiteRTEngine(Engine):
    """LiteRT (the `ai-edge-litert` interpreter, its default XNNPACK delegate, one thread) on
    .tflite files that TensorFlow's converter makes from Keras LSTM / GRU layers holding the
    case's weights (ONNX gate order mapped to Keras's; a GRU with linear_before_reset 1 is
    Keras's reset_after=True). `step`: a model of one timestep (the cell unrolled) whose states
    are inputs and outputs, fed back by hand as onnxruntime's are; `seq`: the Keras layer over
    [1, T, F] (the converter makes it a WHILE loop over the steps), resized per T outside the
    timed calls. `int8=True`: the converter's dynamic-range quantization (int8 weights, the
    activations quantized at each call), LiteRT's usual int8 for recurrent models. Built
    cases only (needs the weights), one direction."""

    KERAS_ORDER = {"lstm": [0, 2, 3, 1], "gru": [0, 1, 2]}  # ONNX i,o,f,c -> Keras i,f,c,o; z,r,h

    def __init__(self, case: Case, weights: list[LayerWeights], work: Path, int8: bool = False) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.name = "litert-int8" if int8 else "litert"
        self.case, self.weights = case, weights
        self.features, self.hidden = case.features, case.hidden
        self.step_interp = Interpreter(model_path=str(self._tflite(work, int8, step=True)), num_threads=1)
        self.step_interp.allocate_tensors()
        sig = self.step_interp.get_signature_runner()
        ins = {k: v["index"] for k, v in sig.get_input_details().items()}
        out_details = sig.get_output_details()  # output_0 (y), output_1, ...: the states in order
        outs = [out_details[f"output_{k}"]["index"] for k in range(len(out_details))]
        self.x_index, self.y_index = ins["x"], outs[0]
        names = self._state_names()
        self.state_pairs = [(ins[n], o) for n, o in zip(names, outs[1:])]
        self.seq_interp = Interpreter(model_path=str(self._tflite(work, int8, step=False)), num_threads=1)
        self.seq_x = self.seq_interp.get_input_details()[0]["index"]
        self.seq_y = self.seq_interp.get_output_details()[0]["index"]
        self.seq_shape: tuple[int, ...] | None = None

    def _layer_states(self, k: int) -> list[str]:
        """Layer k's state inputs of the step model, in the order Keras's layer takes them."""
        return [f"h{k}", f"c{k}"] if self.case.cell == "lstm" else [f"h{k}"]

    def _state_names(self) -> list[str]:
        return [n for k in range(len(self.weights)) for n in self._layer_states(k)]

    def _keras_weights(self, w: LayerWeights) -> list[np.ndarray]:
        g, h = GATES[self.case.cell], self.hidden
        order = self.KERAS_ORDER[self.case.cell]

        def gates(a: np.ndarray) -> np.ndarray:  # [G*H, ...] in Keras's gate order
            return a.reshape(g, h, *a.shape[1:])[order].reshape(a.shape)

        kernel, recurrent = gates(w.W[0]).T, gates(w.R[0]).T
        wb, rb = gates(w.B[0, : g * h]), gates(w.B[0, g * h :])
        bias = wb + rb if self.case.cell == "lstm" else np.stack([wb, rb])
        return [np.ascontiguousarray(a, dtype=_F32) for a in (kernel, recurrent, bias)]

    def _tflite(self, work: Path, int8: bool, step: bool) -> Path:
        """The .tflite file (made once per case, format and form, kept in work)."""
        out = work / f"{self.case.name}.{'step' if step else 'seq'}.{'int8' if int8 else 'f32'}.tflite"
        if out.exists():
            return out
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        keras = tf.keras
        x = keras.Input(shape=(1 if step else None, self.features), batch_size=1, name="x")
        inputs, outputs, y = [x], [], x
        for k, w in enumerate(self.weights):
            cls = keras.layers.LSTM if self.case.cell == "lstm" else keras.layers.GRU
            kw = {"reset_after": True} if self.case.cell == "gru" else {}
            layer = cls(self.hidden, return_sequences=True, return_state=step, unroll=step, **kw)
            if step:
                init = [keras.Input(shape=(self.hidden,), batch_size=1, name=n)
                        for n in self._layer_states(k)]
                inputs += init
                y, *new = layer(y, initial_state=init)
                outputs += new
            else:
                y = layer(y)
            layer.set_weights(self._keras_weights(w))
        model = keras.Model(inputs, [y] + outputs)
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if int8:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        out.write_bytes(converter.convert())
        return out

    def step_inputs(self, x_tbf: np.ndarray) -> list:
        return [np.ascontiguousarray(x_tbf[t : t + 1, :1].transpose(1, 0, 2)) for t in range(len(x_tbf))]

    def stepper(self) -> Step:
        it = self.step_interp
        for i, _ in self.state_pairs:
            it.set_tensor(i, np.zeros((1, self.hidden), _F32))
        set_tensor, get_tensor, invoke = it.set_tensor, it.get_tensor, it.invoke
        xi, yi, pairs = self.x_index, self.y_index, self.state_pairs

        def step(x: np.ndarray) -> np.ndarray:
            set_tensor(xi, x)
            invoke()
            for i, o in pairs:
                set_tensor(i, get_tensor(o))
            return get_tensor(yi)

        return step

    def step_output(self, y: np.ndarray) -> np.ndarray:
        return y.transpose(1, 0, 2)

    def seq_input(self, x_tbf: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x_tbf[:, :1].transpose(1, 0, 2))
        if x.shape != self.seq_shape:
            self.seq_interp.resize_tensor_input(self.seq_x, list(x.shape))
            self.seq_interp.allocate_tensors()
            self.seq_shape = x.shape
        return x

    def run(self, x: np.ndarray) -> np.ndarray:
        it = self.seq_interp
        it.set_tensor(self.seq_x, x)
        it.invoke()
        return it.get_tensor(self.seq_y)

    def seq_output(self, y: np.ndarray) -> np.ndarray:
        return y.transpose(1, 0, 2)
