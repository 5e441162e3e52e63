"""The runtime API: `load` a .rne blob, `Model.run` a sequence, `Model.stream` one step at a time.

Needs numpy and the compiled cffi module, imported when the first Model is made, not when this
module is (rnnedge/_clib.py: a missing build is a NotBuiltError naming the fix). The helpers are
rnnedge/_memory.py (the sizing rule) and rnnedge/_views.py (axis layouts, state views).

Arrays go in and out in the layout of the original ONNX graph (its batch and time axes where it
has them); inside, the C library sees [T, B, F] float32. The step path does no allocation beyond
its output array, no copy of a well-formed input, and one C call.

Memory: `load` reads the blob into a private aligned copy (`mmap=True` maps the file instead);
a stream's state, scratch and step buffers are sized by the C library before they are
allocated, and a size this machine cannot hold is an InputError naming the figure.
"""

from __future__ import annotations

import functools
import mmap as _mmap
import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Literal, Mapping, NamedTuple, overload

import numpy as np

from ._clib import CLib, clib
from ._memory import ALIGN as _ALIGN
from ._memory import aligned_bytes as _aligned_bytes
from ._memory import check_memory as _check_memory
from ._memory import fmt_size as _fmt_size
from ._memory import refuse_memory as _refuse_memory
from ._views import F32 as _F32
from ._views import Layout, StateViews, state_blocks
from .blob.read import read_blob
from .blob.show import describe
from .blob.spec import (DT_S16, DT_S32, E_INPUT, FMT_F32, MAX_ALIGN, OP_CONV, OP_GATHER,
                        OP_TAKE_LAST, V_STATE, Blob)
from .errors import BlobError, InputError, NotStreamableError, StreamBusyError
from .files import file_kind, open_nonblocking

_POOL = 64  # step outputs per allocated block, at most
_POOL_BYTES = 64 * 1024  # ... and at most this many bytes of them (one slot if an output is larger)
_U32 = 2**32 - 1  # the format holds files under 4 GiB; batch and steps are uint32_t in the C API
_RUN_CHUNK = 256  # steps per chunk of a run, for a model the C library may run in chunks
_RUN_FREE = 2  # Model.run's streams kept per batch size for the next run
_SCRATCH_KEEP = 1 << 20  # a stream keeps its run scratch up to this many bytes for the next run
_STREAM_KEEP = 1 << 22  # Model.run keeps a stream of at most this many bytes for the next run
_I32 = np.dtype(np.int32)
_PLAN_SIZE = 1 << 16  # Model.run's fast path: inputs and outputs of at most this many elements


def _check_count(name: str, n, what: str) -> None:
    """A batch or step count the C API takes (uint32), else InputError."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 1 <= n <= _U32:
        raise InputError(
            f"{what}: {name} must be an integer from 1 to {_U32} (the C API's uint32), got {n!r}"
        )


class Model:
    """A loaded .rne model. Create with `rnnedge.load(path)` or `Model.from_bytes(data)`."""

    def __init__(self, buffer, source: str = "<bytes>") -> None:
        self.source = source
        self._buffer = buffer  # keeps the blob memory alive for the C model
        # read_blob has the C loader judge a copy (a refusal names layer, tensor and field) and
        # checks the metadata; then the C loader loads the blob we keep.
        self.blob: Blob = read_blob(memoryview(buffer), source=source)
        c = clib()  # the C library, imported on the first Model (NotBuiltError if not built)
        self._c: CLib = c
        self._cblob = c.ffi.from_buffer(buffer)
        self._cmodel = c.ffi.new("rne_model *")
        c.check(c.lib.rne_model_load(self._cblob, len(self._cblob), self._cmodel), source)
        meta = self.blob.meta
        self.name: str = meta.get("name", "model")
        self.quant: str = meta.get("quant", "f32")
        self.in_features = int(self._cmodel.in_features)
        self.out_features = int(self._cmodel.out_features)
        self.streamable = bool(self._cmodel.streamable)
        self.many_to_one = bool(self._cmodel.many_to_one)
        self.input_spec = meta["input"]
        self.output_spec = meta["output"]
        self._in = Layout.of(self.input_spec)
        out_axes = self.output_spec["axes"]
        self._out = Layout.of(self.output_spec)
        # run's layouts: a step function's input has no time axis (one call = one step), so
        # run takes the calls stacked on a new first axis T and gives the outputs so stacked
        # (docs/graph.md section 7); every other model runs in its graph's own layout
        step_fn = "T" not in self._in.axes
        self._run_in = Layout.of(self.input_spec, "T") if step_fn else self._in
        self._run_out = (Layout.of(self.output_spec, "T")
                         if step_fn and "T" not in out_axes and not self.many_to_one else self._out)
        self._state_blocks = state_blocks(self.blob.layers, meta.get("state", []), source)
        # the graph's STATE values, by name (Stream.state shows them beside the cells' state)
        self._state_values = {v.name: v for v in self.blob.values if v.kind == V_STATE}
        # each causal conv's frame cache, by node index: its Stream.state name (_cache_names)
        self._cache_names = _cache_names(self.blob, [*self._state_values, *self._state_blocks])
        names = [*self._state_values, *self._state_blocks, *self._cache_names.values()]
        clash = {name for name in names if names.count(name) > 1}
        if clash:
            raise BlobError(f"{source}: state {sorted(clash)[0]!r} names two of a state value, a "
                            "recurrent node's state and a conv's frame cache")  # fmt: skip
        # an s32 input: integer ids (a GATHER's), passed to C as int32, never quantized
        self._ids = self.blob.input.dtype == DT_S32
        self._x_dtype = _I32 if self._ids else _F32
        # latency (docs/graph.md section 6): a stream's output lags ONNX's by this many steps
        lat = meta.get("latency_steps", 0)
        if not isinstance(lat, int) or isinstance(lat, bool) or not 0 <= lat <= _U32:
            raise BlobError(f"{source}: metadata latency_steps must be an integer 0..{_U32}, got {lat!r}")
        self.latency_steps: int = lat
        # rne_run splits a long run into chunks for these (csrc/model.c rne__chunkable): scratch
        # for _RUN_CHUNK steps instead of all of them; not a model with latency and a TAKE_LAST,
        # whose Model.run (rne_run_end before its flush frames) runs in one chunk
        takes = [n for n in self.blob.nodes if n.op == OP_TAKE_LAST]
        self._chunkable = self.streamable and not self._state_values and all(
            n.param[0] == n.in_features for n in takes) and not (lat and takes)
        self._flush_refusal = self._flush_check() if lat else None
        # Integer models take and give int16 at these scales; the binding converts floats.
        self._qio: tuple[float, float] | None = None
        if self.quant != "f32":
            qio = meta.get("qio")
            if not isinstance(qio, dict) or not {"input_scale", "output_scale"} <= set(qio):
                raise BlobError(f"{source}: an {self.quant} blob without its input/output scales (qio)")
            self._qio = (float(qio["input_scale"]), float(qio["output_scale"]))
        # Model.run's streams, kept for the next run of the same batch (at most _RUN_FREE each;
        # a list's pop and append are atomic, so threads running at once each get their own)
        self._run_free: dict[int, list[Stream]] = {}
        self._size_cache: dict[tuple[int, int], tuple[int, int]] = {}  # _sizes, by (batch, steps)
        # run's plans, by input shape (_run_plan): what a run of an input of that shape, once
        # checked, needs; a later run of an array of the same shape and dtype skips the checks
        self._run_plans: dict[tuple[int, ...], _RunPlan] = {}
        self._run_what = f"{self.name}.run"

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, source: str = "<bytes>") -> "Model":
        """Load from memory: any buffer (bytes, bytearray, memoryview, numpy array, mmap).

        The model must not change under the C library, so only an immutable `bytes` (or a
        memoryview of one) is used in place, and only when it starts at the blob's alignment
        (rarely: CPython's bytes data is 16-byte aligned at best). Anything writable or backed
        by something else (bytearray, numpy arrays even marked read-only, mmap) is copied once
        into private aligned memory: changing it afterwards does not change the model.
        """
        try:
            view = memoryview(data)
        except TypeError:
            raise InputError(
                f"{source}: expected the blob as bytes, bytearray or another buffer, "
                f"got {type(data).__name__}"
            ) from None
        immutable = isinstance(view.obj, bytes)
        if not view.c_contiguous:
            view, immutable = memoryview(view.tobytes()), True
        view = view.cast("B")
        align = int.from_bytes(bytes(view[16:20]), "little") if len(view) >= 20 else _ALIGN
        align = align if 0 < align <= MAX_ALIGN and align & (align - 1) == 0 else _ALIGN
        arr = np.frombuffer(view, dtype=np.uint8)
        if not immutable or len(arr) == 0 or arr.ctypes.data % align:
            copy = _aligned_bytes(len(arr), max(align, _ALIGN))
            copy[:] = arr
            copy.flags.writeable = False
            arr = copy
        return cls(arr, source)

    def _flush_check(self) -> str | None:
        """Why `run` cannot be exact for this model with latency, or None. `run` feeds the
        latency's zero frames after x, runs them with rne_run_end (each node's input ends where
        the real input's does, lagged by its skip: docs/graph.md section 6) and drops as many
        first outputs."""
        if self._state_values:
            return "a step function with latency runs step by step only (Model.stream)"
        return None

    # -- description -----------------------------------------------------------------------
    def state_bytes(self, batch: int = 1) -> int:
        """Bytes of recurrent state of a stream of `batch` sequences."""
        return self._sizes(batch, 1, f"{self.name}.state_bytes")[0]

    def scratch_bytes(self, batch: int = 1, steps: int = 1) -> int:
        """Bytes of scratch for a call over `steps` timesteps of `batch` sequences."""
        return self._sizes(batch, steps, f"{self.name}.scratch_bytes")[1]

    def _sizes(self, batch: int, steps: int, what: str) -> tuple[int, int]:
        """(state, scratch) bytes from the C library; InputError for a batch or step count the
        C API cannot take (uint32) or whose sizes overflow size_t (the C functions return 0)."""
        known = self._size_cache.get((batch, steps)) if type(batch) is int and type(steps) is int \
            else None  # fmt: skip
        if known is not None:  # sizes depend on the model, batch and steps alone
            return known
        for name, n in (("batch", batch), ("steps", steps)):
            _check_count(name, n, what)
        lib = self._c.lib
        state = int(lib.rne_state_size(self._cmodel, int(batch)))
        scratch = int(lib.rne_scratch_size(self._cmodel, int(batch), int(steps)))
        if state == 0 or scratch == 0:
            raise InputError(
                f"{what}: batch {batch} over {steps} steps needs more state and scratch than "
                "this machine can address"
            )
        if len(self._size_cache) < 64:
            self._size_cache[(int(batch), int(steps))] = (state, scratch)
        return state, scratch

    @property
    def weight_bytes(self) -> int:
        return sum(t.nbytes for t in self.blob.tensors)

    def __repr__(self) -> str:
        return (
            describe(self.blob)
            + f"\nstate {self.state_bytes(1)} B and step scratch {self.scratch_bytes(1, 1)} B"
            " per stream"
        )

    # -- running ---------------------------------------------------------------------------
    def _check_input(self, x, axes: str, what: str) -> np.ndarray:
        x = np.asarray(x)
        if self._ids:
            name = self.blob.input.name
            if x.dtype.kind not in "iu":
                raise InputError(f"{what}: input {name!r} takes integer ids (int32), got dtype "
                                 f"{x.dtype}")  # fmt: skip
            if x.size and (x.min() < -(2**31) or x.max() > 2**31 - 1):
                bad = x.min() if x.min() < -(2**31) else x.max()
                raise InputError(f"{what}: input {name!r}: id {int(bad)} does not fit int32")
        elif x.dtype.kind not in "fiub":
            raise InputError(f"{what}: expected a float32 array, got dtype {x.dtype}")
        want = Layout(axes, 1, self._in.fdims).sizes(self.in_features)  # F: the per-step sizes
        if x.ndim != len(axes) or any(a == "F" and d != w for a, d, w in zip(axes, x.shape, want)):
            shape = ", ".join(map(str, want))
            legend = ", ".join(w for a, w in (("T", "T time"), ("B", "B batch")) if a in axes)
            raise InputError(
                f"{what}: expected shape [{shape}] ({legend + ', then ' if legend else ''}"
                f"{self.in_features} features), got {list(x.shape)}"
            )
        return x

    @overload
    def run(self, x, state: Mapping[str, np.ndarray] | None = None, *,
            return_state: Literal[False] = False) -> np.ndarray: ...

    @overload
    def run(self, x, state: Mapping[str, np.ndarray] | None = None, *,
            return_state: Literal[True]) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...

    def run(self, x, state: Mapping[str, np.ndarray] | None = None, *, return_state: bool = False
            ) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:  # fmt: skip
        """Run whole sequences; x and the result in the graph's layout.

        Starts from the model's initial state, or from `state` (name -> array, the names and
        shapes of `Stream.state`) where given; entries not given keep the initial state.

        `return_state=True` returns (output, final state): the graph's other outputs that
        rnnedge computes, its final recurrent states (an ONNX LSTM's Y_h and Y_c, PyTorch's hn
        and cn, a step function's new state), as `Stream.state` names and shapes them after the
        run (a state the graph carried as an input under that input's name).
        """
        # The fast path: an array of a shape checked before (its plan), in the dtype the C library
        # takes, C-contiguous, in a layout whose conversion to [T, B, F] moves nothing; run on a
        # kept stream. Anything else (or a state to start from) takes the checked path below.
        if state is None and not return_state and type(x) is np.ndarray and x.dtype is self._x_dtype:
            plan = self._run_plans.get(x.shape)
            if plan is not None and x.flags.c_contiguous:
                free = self._run_free.get(plan.batch)
                if free:
                    try:
                        stream = free.pop()
                    except IndexError:  # another thread took it meanwhile
                        pass
                    else:
                        return stream._run_planned(x, plan, free)
        what = self._run_what
        if self._flush_refusal is not None:
            raise InputError(f"{what}: this model has latency_steps {self.latency_steps} and "
                             f"{self._flush_refusal}")
        if return_state and self.latency_steps:
            raise InputError(
                f"{what}: return_state: this model has latency_steps {self.latency_steps}, so its "
                f"run feeds {self.latency_steps} zero frames after x (docs/graph.md section 6) and "
                "its final state is not the state after x; step it with Model.stream and read "
                "Stream.state")
        x = self._check_input(x, self._run_in.axes, what)
        shape, plannable = x.shape, state is None and x.dtype is self._x_dtype
        dims = dict(zip(self._run_in.axes, shape))
        batch, steps = dims.get("B", 1), dims.get("T", 1)
        if batch == 0:
            raise InputError(f"{what}: the batch is empty (B = 0)")
        needs = f"batch {batch} over T = {steps} steps"
        free = self._run_free.setdefault(batch, [])
        nbytes = 0
        if not free or (steps + self.latency_steps) * batch > _RUN_CHUNK:
            # the memory rule, before allocating (a kept stream and a short run allocate little)
            nbytes = self._stream_bytes(batch, what) + self._run_bytes(
                batch, steps + self.latency_steps, what)  # fmt: skip
            _check_memory(what, needs, nbytes)
        try:
            x = self._run_in.to_internal(x, self._x_dtype)
            try:  # a stream of an earlier run (this call's alone now), back at the initial state
                stream = free.pop()
                self._c.check(self._c.lib.rne_stream_reset(stream._cstream), what)
            except IndexError:
                stream = Stream(self, batch, _what=what)
            if state is not None:
                stream.state = state
            y = stream._run_internal(x, what, flush=self.latency_steps)
            final = stream._views.get() if return_state else None  # this call holds the stream
        except MemoryError:
            nbytes = nbytes or self._stream_bytes(batch, what) + self._run_bytes(
                batch, steps + self.latency_steps, what)  # fmt: skip
            raise _refuse_memory(what, needs, nbytes, failed=True) from None
        # kept only after a run that finished (nothing half-done is reused), and only a small one
        if len(free) < _RUN_FREE and self._stream_bytes(batch, what) <= _STREAM_KEEP:
            free.append(stream)
            if plannable and shape not in self._run_plans:
                self._run_plan(shape, batch, steps, y.shape)
        return y if final is None else (y, final)

    def _run_plan(self, shape: tuple[int, ...], batch: int, steps: int,
                  y_shape: tuple[int, ...]) -> None:
        """Record run's plan for an input of this shape that has just run (checked, its stream
        kept), if the fast path can take it: no latency (its flush concatenates), at least one
        step, at most _PLAN_SIZE elements in and out (a longer run's checks cost nothing beside
        it), and a layout whose conversion to [T, B, F] and back only reshapes (probed once on
        numbered arrays)."""
        y_internal = (1 if self.many_to_one else steps, batch, self.out_features)
        size, y_size = int(np.prod(shape)), int(np.prod(y_internal))
        if self.latency_steps or steps < 1 or max(size, y_size) > _PLAN_SIZE \
                or len(self._run_plans) >= 64:  # fmt: skip
            return
        probe = np.arange(size, dtype=np.int64).reshape(shape)
        internal = self._run_in.to_internal(probe, np.dtype(np.int64))
        numbered = np.arange(y_size, dtype=np.int64).reshape(y_internal)
        out = np.ascontiguousarray(self._run_out.from_internal(numbered))
        if out.shape != y_shape or not (np.array_equal(internal.ravel(), probe.ravel())
                                        and np.array_equal(out.ravel(), numbered.ravel())):
            return
        what = self._run_what
        nbytes = self._stream_bytes(batch, what) + self._run_bytes(batch, steps, what)
        self._run_plans[tuple(shape)] = _RunPlan(
            batch, steps, internal.shape, y_shape, self.scratch_bytes(batch, self._run_steps(steps)),
            nbytes if steps * batch > _RUN_CHUNK else 0)  # fmt: skip

    def stream(self, batch: int = 1) -> "Stream":
        """A stream of `batch` independent sequences, stepped one timestep at a time."""
        if not self.streamable:
            raise NotStreamableError(
                f"{self.name}: a layer reads the sequence backwards (bidirectional or "
                "direction=reverse), so the model cannot be stepped; use Model.run on whole sequences"
            )
        if not isinstance(batch, (int, np.integer)) or batch < 1:
            raise InputError(f"{self.name}.stream: batch must be a positive integer, got {batch!r}")
        what, needs = f"{self.name}.stream", f"batch {batch}"
        nbytes = self._stream_bytes(batch, what)
        _check_memory(what, needs, nbytes)
        try:
            return Stream(self, int(batch))
        except MemoryError:
            raise _refuse_memory(what, needs, nbytes, failed=True) from None

    def _pool_slots(self, batch: int) -> int:
        """Step outputs per block of a stream's output pool (see Stream._new_slots)."""
        return max(1, min(_POOL, _POOL_BYTES // (4 * batch * self.out_features or 1)))

    def _stream_bytes(self, batch: int, what: str) -> int:
        """Bytes a Stream of `batch` allocates: state, step scratch, one output block and, for
        an integer model, its int16 step buffers. Checks batch (InputError)."""
        state, scratch = self._sizes(batch, 1, what)
        outputs = self._pool_slots(batch) * 4 * batch * self.out_features
        qbufs = 2 * batch * (self.in_features + self.out_features) if self._qio else 0
        return state + scratch + outputs + qbufs + 2 * _ALIGN

    def _run_steps(self, steps: int) -> int:
        """The steps of scratch a run over `steps` timesteps is given: a chunk of at most
        _RUN_CHUNK for a model the C library runs in chunks (docs/c-api.md, rne_run), else all."""
        return max(1, min(steps, _RUN_CHUNK) if self._chunkable else steps)

    def _ids_fault(self, x: np.ndarray, what: str) -> InputError:
        """The InputError for ids the C library refused (RNE_EINPUT): the first one outside a
        GATHER's vocabulary, where it is."""
        for i, n in enumerate(self.blob.nodes):
            if n.op == OP_GATHER and n.inputs[0] == self.blob.input.index:
                bad = np.flatnonzero((x < 0) | (x >= n.param[0]))
                if bad.size:
                    at = [int(k) for k in np.unravel_index(bad[0], x.shape)]
                    return InputError(
                        f"{what}: input {self.blob.input.name!r}: id {int(x.flat[bad[0]])} at "
                        f"[t, b, i] = {at} is outside [0, {n.param[0]}), the vocabulary of node "
                        f"{i} (GATHER)"
                    )
        return InputError(f"{what}: input {self.blob.input.name!r}: an id is out of range")

    def _run_bytes(self, batch: int, steps: int, what: str) -> int:
        """Bytes a run over `steps` timesteps allocates beyond the stream's own: its scratch, the
        float32 input copy and the output (integer models: their int16 copies as well)."""
        _check_count("steps", max(steps, 1), what)
        scratch = self._sizes(batch, self._run_steps(steps), what)[1]
        inputs = steps * batch * self.in_features
        outputs = (1 if self.many_to_one else steps) * batch * self.out_features
        per_value = 6 if self._qio else 4
        return scratch + per_value * (inputs + outputs) + _ALIGN


def _cache_names(blob: Blob, taken: list[str]) -> dict[int, str]:
    """Stream.state's name of each causal CONV node's frame cache (kt > 1), by node index: its
    output value's name + ".cache" (the converter names that value after the ONNX Conv node), or
    "node<i>.cache" where that name is not unique (ONNX nodes without names) or names other state."""
    convs = [n for n in blob.nodes if n.op == OP_CONV and n.param[0] > 1]
    names = [f"{blob.values[n.outputs[0]].name}.cache" for n in convs]
    return {n.index: name if names.count(name) == 1 and name not in taken else f"node{n.index}.cache"
            for n, name in zip(convs, names)}  # fmt: skip


def _conv_caches(model: Model, batch: int) -> dict[str, tuple[int, np.dtype, tuple[int, ...], int]]:
    """The frame cache of each CONV node with a time kernel (kt > 1) in a state buffer of `batch`
    streams, as StateViews takes a STATE value's block: name -> (byte offset from the C library's
    rne_state_offset, element type, the stored shape [(kt - 1) dt, B, *x's per-step shape], B
    shown first: [B, frames, *x])."""
    lib, cm, blob = model._c.lib, model._cmodel, model.blob
    none = int(model._c.ffi.cast("size_t", -1))  # (size_t)-1: no state
    caches: dict[str, tuple[int, np.dtype, tuple[int, ...], int]] = {}
    for n in blob.nodes:
        if n.op == OP_CONV and n.param[0] > 1:
            off = int(lib.rne_state_offset(cm, n.index, batch))
            if off == none:  # pragma: no cover - the loader proved the cache
                raise BlobError(f"{model.source}: node {n.index} (CONV, kt {n.param[0]}) has no "
                                "frame cache in the C library's state layout")  # fmt: skip
            frames = (n.param[0] - 1) * n.param[1]
            dtype = _F32 if n.fmt == FMT_F32 else np.dtype(np.int16)
            x = blob.values[n.inputs[0]]
            caches[model._cache_names[n.index]] = (off, dtype, (frames, batch) + tuple(x.shape), 1)
    return caches


class _RunPlan(NamedTuple):
    """What Model.run's fast path needs for an input of one shape (Model._run_plan)."""

    batch: int
    steps: int
    x_internal: tuple[int, ...]  # the input as [T, B, F] (a reshape of the graph's layout)
    y_shape: tuple[int, ...]  # the output in the graph's layout (a reshape of [T or 1, B, O])
    scratch: int  # bytes of scratch the run is given
    nbytes: int  # what the memory rule checks on every call (0: a short run, none)


class Stream:
    """`batch` independent streams over one model; keeps their recurrent state between calls.

    `step(x)` takes one timestep in the graph's layout without the time axis and returns the
    output for that step (for a many-to-one model: what `run` would return if the sequence ended
    there). `run(x)` pushes a chunk of timesteps. Create with `Model.stream(batch)`.

    Threads: separate streams of one model may step in parallel (the C call releases the GIL).
    A stream is one sequence: a call on it (`step`, `run`, `reset`, `state`) while another
    thread is inside one raises StreamBusyError and changes nothing; the other call's result is
    intact.

    Outputs: every array `step` returns is its own memory, written once by that call and never
    again by this stream: it stays valid and unchanged for as long as it is held. (Outputs are
    cut from blocks of up to 64 slots, at most 64 KiB, each slot handed to one call only, by
    the call that holds the stream; a block is freed when no output cut from it is held.)
    """

    def __init__(self, model: Model, batch: int, _what: str | None = None) -> None:
        what = _what or f"{model.name}.stream"
        self.model = model
        self.batch = batch
        self._x_axes = model._in.axes.replace("T", "")
        if "B" not in self._x_axes and batch != 1:
            raise InputError(
                f"{what}: the graph's input has no batch axis, so a stream has batch 1, not {batch}"
            )
        if "B" not in model._out.axes and batch != 1:
            raise InputError(
                f"{what}: the graph's output has no batch axis (the graph fixes the batch at 1), "
                f"so it runs batch 1, not {batch}"
            )
        # Model.stream and Model.run check the sizes against memory first (_check_memory).
        state_size, scratch_size = model._sizes(batch, 1, what)
        self._bind(model, batch, state_size, scratch_size, what)
        # The stream's one token: a call takes it (list.pop, atomic) and gives it back (append);
        # a second thread meanwhile finds none and is refused (not a lock: nobody waits on it,
        # and a pop and an append cost a third of a Lock's acquire(False) and release)
        token = [True]
        self._take, self._give = token.pop, token.append
        self.step = self._make_step()  # shadow the methods of those names (their docs)
        self.step_into = self._make_step_into()
        self._run_scratch: np.ndarray | None = None  # _run_internal's scratch, kept for the next
        # _run_planned's buffers of the last plan: (plan, scratch pointer, and for an integer
        # model the int16 input's pointer (None for ids), the int16 output and its pointer)
        self._run_bufs: tuple | None = None

    def _bind(self, model: Model, batch: int, state_size: int, scratch_size: int, what: str) -> None:
        """Allocate the stream's buffers and bind them to a C stream, and bind once what the step
        path calls (the C functions, ffi.from_buffer and its float[] type)."""
        self._c = c = model._c
        lib, from_buffer = c.lib, c.from_buffer
        self._from_buffer, self._floats = from_buffer, c.floats
        self._state = _aligned_bytes(state_size)
        self._scratch = _aligned_bytes(scratch_size)
        self._cstream = c.ffi.new("rne_stream *")
        c.check(
            lib.rne_stream_init(
                self._cstream,
                model._cmodel,
                batch,
                from_buffer(self._state),
                len(self._state),
                from_buffer(self._scratch),
                len(self._scratch),
            ),
            what,
        )
        where = {"h": lib.rne_state_offset, "c": lib.rne_state_c_offset}
        offsets = {(i, kind): int(where[kind](model._cmodel, i, batch))
                   for parts in model._state_blocks.values() for i, kind in parts}  # fmt: skip
        values = {}
        for name, v in model._state_values.items():  # in its graph input's layout, if recorded
            spec = model.blob.meta.get("value_specs", {}).get(name)
            axes = spec["axes"] if spec else "B" + "F" * len(v.shape)
            fdims = tuple(d for a, d in zip(axes, spec["shape"]) if a == "F") if spec else v.shape
            b_axis = axes.index("B") if "B" in axes else 0
            values[name] = (int(lib.rne_value_state_offset(model._cmodel, v.index, batch)),
                            np.dtype(np.int16) if v.dtype == DT_S16 else _F32, (batch,) + fdims,
                            b_axis)
        values.update(_conv_caches(model, batch))
        self._views = StateViews(model._state_blocks, model.blob.layers, offsets, self._state,
                                 batch, values)  # fmt: skip
        self._x_shape = tuple(model._in.without("T").sizes(model.in_features, batch))
        y_axes = model._out.axes.replace("T", "")
        if y_axes in ("BF", "F"):  # same memory as [1, B, F]: the C library writes it directly
            self._y_shape: tuple[int, ...] = (batch, model.out_features)[2 - len(y_axes) :]
            self._y_layout: Layout | None = None
        else:
            self._y_shape = (1, batch, model.out_features)
            self._y_layout = model._out.without("T")
        self._y_size = batch * model.out_features  # floats per step output
        # a batch-1 step given its frame without the batch axis returns its output without it
        self._y_batch_axis = y_axes.index("B") if "B" in y_axes else None
        self._pool_slots = model._pool_slots(batch)
        self._step, self._step_float = lib.rne_step, lib.rne_step_float
        self._x_dtype = model._x_dtype
        self._x_ctype = "int32_t[]" if model._ids else c.floats
        self._qio = model._qio
        self._qargs: tuple | None = None
        if self._qio is not None:  # int16 in/out buffers of one step, with their pointers
            n_in, n_out = batch * model.in_features, batch * model.out_features
            self._xq_buf, self._yq_buf = np.empty(n_in, np.int16), np.empty(n_out, np.int16)
            xq, yq = from_buffer("int16_t[]", self._xq_buf), from_buffer("int16_t[]", self._yq_buf)
            self._qargs = (self._qio[0], xq, yq, self._qio[1])

    def _new_slots(self) -> Callable[[], tuple[np.ndarray, object]]:
        """Step outputs are cut from blocks of `_pool_slots` arrays: cheaper than one allocation
        each. A new block, as the __next__ of an iterator over its (output view, pointer) slots,
        each slot given once. Called only by the thread that holds the stream (or by __init__)."""
        pool = np.empty((self._pool_slots,) + self._y_shape, _F32)
        ptr, y_size = self._from_buffer(self._floats, pool), self._y_size
        return iter([(y, ptr + i * y_size) for i, y in enumerate(pool)]).__next__

    def step(self, x) -> np.ndarray:
        """One timestep: x in the graph's input layout without its time axis. A stream of batch 1
        also takes the frame without its batch axis ([F] for [1, F]) and then returns the output
        without its batch axis. Returns an array of its own (see the class docstring): valid and
        unchanged for as long as it is held. (Each stream replaces this method by a closure over
        its C call, `_make_step`, as it does step_into.)"""
        return self._make_step()(x)

    def _c_step_call(self) -> Callable[[Any, Any], int]:
        """The C call of one step, xp -> float32 yp, for this stream's number format, bound once
        (step and step_into call it): rne_step for float models; for integer ones rne_step_float
        (quantize, step, dequantize in one call), or, for a model of ids, rne_step into the int16
        buffer and then its dequantization."""
        cstream, c_step = self._cstream, self._step
        if self._qargs is None:
            return functools.partial(c_step, cstream)
        s_in, xq, yq, s_out = self._qargs
        if not self.model._ids:
            c_step_float = self._step_float
            return lambda xp, yp: c_step_float(cstream, xp, s_in, xq, yq, s_out, yp)
        dequantize, y_size = self._c.lib.rne_dequantize_s16, self._y_size

        def ids_step(xp, yp) -> int:
            rc = c_step(cstream, xp, yq)
            if rc == 0:
                dequantize(yq, y_size, s_out, yp)
            return rc

        return ids_step

    def _make_step(self) -> Callable[[Any], np.ndarray]:
        """The body of step, with everything it reads bound once (see _make_step_into): the
        output pool's block views, their pointer and the next free slot live in one list that
        only the thread holding the stream changes."""
        c_call, from_buffer = self._c_step_call(), self._from_buffer
        x_dtype, x_shape, x_ctype = self._x_dtype, self._x_shape, self._x_ctype
        layout, b_axis = self._y_layout, self._y_batch_axis
        take, give, new_slots = self._take, self._give, self._new_slots
        last_x: list[tuple[object, object]] = [(None, self._c.ffi.NULL)]
        slots = [new_slots()]  # the current block's next (output, pointer), as an iterator's __next__

        def step(x) -> np.ndarray:
            unbatched = False
            seen, xp = last_x[0]
            if x is not seen or x.dtype is not x_dtype:  # the last call's array: its dtype only
                try:  # fast path: C-contiguous, the dtype and shape (from_buffer: contiguity)
                    if x.dtype is not x_dtype or x.shape != x_shape:
                        raise TypeError
                    xp = from_buffer(x_ctype, x)
                    last_x[0] = (x, xp)
                except (AttributeError, TypeError, ValueError, BufferError):
                    x, unbatched = self._coerce(x)
                    xp = from_buffer(x_ctype, x)
            # Claim the stream first: a refused call must touch nothing (not the output pool, not
            # the int16 buffers) that the winner's C call, which runs without the GIL, writes.
            try:
                take()
            except IndexError:
                raise self._busy("step") from None
            try:
                try:
                    y, yp = slots[0]()
                except StopIteration:  # the block is used up: a new one
                    slots[0] = new_slots()
                    y, yp = slots[0]()
                rc = c_call(xp, yp)
            finally:
                give(True)
            if rc:  # an id out of range (nothing written), or never on a loaded Model
                self._step_fault(rc, x, "step")
            if layout is not None:
                y = layout.from_internal(y)
            if unbatched and b_axis is not None:
                return np.squeeze(y, axis=b_axis)
            return y

        return step

    def step_into(self, x, out: np.ndarray) -> np.ndarray:
        """`step(x)` written into `out` instead of a new array: the same numbers, no allocation and
        the least Python per call (for loops that step millions of times). `out` is a writable,
        C-contiguous float32 array of the shape `step` returns; it is returned. Only this call
        writes it: an output the caller keeps must be copied before `out` is passed again.
        (Each stream replaces this method by a closure over its C call, `_make_step_into`: an
        attribute lookup costs as much as the rest of the Python around the call.)"""
        return self._make_step_into()(x, out)

    def _make_step_into(self) -> Callable[[Any, np.ndarray], np.ndarray]:
        """The body of step_into, with everything it reads bound once: the C stream and function,
        the input and output checks' expectations, the stream's token, the last input and output
        with their pointers (each pair in one cell, so a racing thread reads a matching pair)."""
        c_call, from_buffer = self._c_step_call(), self._from_buffer
        x_dtype, x_shape, x_ctype, floats = self._x_dtype, self._x_shape, self._x_ctype, self._floats
        y_shape, direct = self._y_shape, self._y_layout is None
        take, give = self._take, self._give
        null = self._c.ffi.NULL
        last_x: list[tuple[object, object]] = [(None, null)]
        last_out: list[tuple[object, object]] = [(None, null)]

        def step_into(x, out: np.ndarray) -> np.ndarray:
            # The arrays of the last call are checked again only for their dtype (an array's
            # shape can change in place only to one of the same size: the same bytes); a new one
            # is checked whole, then kept with its pointer.
            seen, yp = last_out[0]
            if out is not seen or out.dtype is not _F32:
                try:  # fast path: out is what the C library writes (no layout conversion)
                    if out.dtype is not _F32 or out.shape != y_shape or not direct:
                        raise TypeError
                    yp = from_buffer(floats, out, require_writable=True)
                    last_out[0] = (out, yp)
                except (AttributeError, TypeError, ValueError, BufferError):
                    return self._step_into_checked(x, out)
            seen, xp = last_x[0]
            if x is not seen or x.dtype is not x_dtype:
                try:  # the input as in step
                    if x.dtype is not x_dtype or x.shape != x_shape:
                        raise TypeError
                    xp = from_buffer(x_ctype, x)
                    last_x[0] = (x, xp)
                except (AttributeError, TypeError, ValueError, BufferError):
                    given = x
                    x, unbatched = self._coerce(x)
                    if unbatched:  # a frame without its batch axis: out has none either
                        return self._step_into_checked(given, out)
                    xp = from_buffer(x_ctype, x)
            try:
                take()
            except IndexError:
                raise self._busy("step_into") from None
            try:
                rc = c_call(xp, yp)
            finally:
                give(True)
            if rc:
                self._step_fault(rc, x, "step_into")
            return out

        return step_into

    def _step_fault(self, rc: int, x, what: str) -> None:
        """The error of a step's C call (rc != 0): ids out of range, else the status."""
        if rc == E_INPUT:  # an id out of range: nothing was written
            raise self.model._ids_fault(np.asarray(x)[None, ...].reshape(1, self.batch, -1),
                                        f"{self.model.name}.{what}")  # fmt: skip
        self._c.check(rc, f"{self.model.name}.{what}")

    def _step_into_checked(self, x, out) -> np.ndarray:
        """step_into for an `out` the fast path did not take: checked, then step and copy."""
        what = f"{self.model.name}.step_into"
        if not isinstance(out, np.ndarray):
            raise InputError(f"{what}: out must be a numpy array, got {type(out).__name__}")
        if out.dtype != _F32 or not out.flags.c_contiguous or not out.flags.writeable:
            raise InputError(
                f"{what}: out must be a writable, C-contiguous float32 array; got dtype {out.dtype}"
                f"{'' if out.flags.c_contiguous else ', not C-contiguous'}"
                f"{'' if out.flags.writeable else ', read-only'}"
            )
        shape = self._y_shape if self._y_layout is None else \
            self._y_layout.from_internal(np.empty(self._y_shape, _F32)).shape
        if self._coerce(x)[1] and self._y_batch_axis is not None:  # a frame without its batch
            shape = shape[: self._y_batch_axis] + shape[self._y_batch_axis + 1 :]  # axis: as step
        if out.shape != shape:
            raise InputError(f"{what}: out has shape {list(out.shape)}; a step's output has shape "
                             f"{list(shape)}")  # fmt: skip
        out[...] = self.step(x)
        return out

    def _coerce(self, x) -> tuple[np.ndarray, bool]:
        """x as the C step takes it, and whether it came without its batch axis (batch 1)."""
        what = f"{self.model.name}.step"
        axes = self._x_axes
        b = axes.find("B")
        frame = self._x_shape[:b] + self._x_shape[b + 1 :] if self.batch == 1 and b >= 0 else None
        unbatched = frame is not None and np.shape(x) == frame
        if unbatched:
            x = np.expand_dims(np.asarray(x), b)
        try:
            x = self.model._check_input(x, axes, what)
        except InputError as e:
            if frame is None or unbatched:
                raise
            raise InputError(f"{e}; a stream of batch 1 also takes one frame without its batch "
                             f"axis, shape {list(frame)}") from None  # fmt: skip
        if x.shape != self._x_shape:
            raise InputError(
                f"{what}: this stream has batch {self.batch}: expected shape "
                f"{list(self._x_shape)} (axes {axes}), got {list(x.shape)}"
            )
        return np.ascontiguousarray(x, dtype=self._x_dtype), unbatched

    def run(self, x) -> np.ndarray:
        """Push a chunk of timesteps (graph layout, with its time axis) through the stream; returns
        what `Model.run` would for them, continuing from (and updating) the stream's state. A
        stream of batch 1 also takes the chunk without its batch axis (as `step` takes a frame
        without it: [T, F] for [T, 1, F]) and then returns the output without its batch axis."""
        model = self.model
        # The fast path: an array of a shape run before at this batch (a plan of Model._run_plan,
        # recorded by Model.run or by this method), as Model.run's fast path takes it.
        if type(x) is np.ndarray and x.dtype is model._x_dtype and x.flags.c_contiguous:
            plan = model._run_plans.get(x.shape)
            if plan is not None and plan.batch == self.batch:
                return self._run_planned(x, plan, None)
        what = f"{self.model.name}.stream.run"
        axes = model._run_in.axes
        b = axes.find("B")
        unbatched = self.batch == 1 and b >= 0 and np.ndim(x) == len(axes) - 1
        if unbatched:
            given = np.shape(x)
            try:
                x = model._check_input(np.expand_dims(np.asarray(x), b), axes, what)
            except InputError as e:
                if "expected shape" not in str(e):  # a dtype or an id: as it is
                    raise
                full, want = (", ".join(map(str, layout.sizes(model.in_features)))
                              for layout in (model._run_in, model._run_in.without("B")))
                raise InputError(f"{what}: a stream of batch 1 takes shape [{full}] or, without "
                                 f"the batch axis, [{want}]; got {list(given)}") from None
        else:
            x = model._check_input(x, axes, what)
        dims = dict(zip(axes, x.shape))
        batch, steps = dims.get("B", 1), dims.get("T", 1)
        if batch != self.batch:
            raise InputError(f"{what}: this stream has batch {self.batch}, the input {batch}")
        needs, nbytes = f"batch {batch} over T = {steps} steps", model._run_bytes(batch, steps, what)
        _check_memory(what, needs, nbytes)
        plannable = not unbatched and x.dtype is model._x_dtype and x.shape not in model._run_plans
        shape = x.shape
        try:
            y = self._run_internal(model._run_in.to_internal(x, model._x_dtype), what)
        except MemoryError:
            raise _refuse_memory(what, needs, nbytes, failed=True) from None
        if plannable:
            model._run_plan(shape, batch, steps, y.shape)
        b_out = model._run_out.axes.find("B")
        return np.squeeze(y, axis=b_out) if unbatched and b_out >= 0 else y

    def _run_planned(self, x: np.ndarray, plan: _RunPlan, free: list["Stream"] | None
                     ) -> np.ndarray:  # fmt: skip
        """The fast path of Model.run and Stream.run (the caller checked x's type, dtype,
        contiguity and, through its plan, its shape and batch) runs x into a new array of the
        output's shape: the same C calls and results as _run_internal, with the buffers of the
        last run of this plan reused. For Model.run (`free` given) this stream is one of its own
        (no other caller holds it): reset first, then back to `free`. For Stream.run (`free`
        None) the stream goes on from its state, held for the call like any other."""
        model = self.model
        what = model._run_what if free is not None else f"{model.name}.stream.run"
        if plan.nbytes:  # the memory rule, for a long run
            _check_memory(what, f"batch {plan.batch} over T = {plan.steps} steps", plan.nbytes)
        if free is None and not self._claim():
            raise self._busy("run")
        try:
            return self._run_planned_held(x, plan, free, what)
        finally:
            if free is None:
                self._release()

    def _run_planned_held(self, x: np.ndarray, plan: _RunPlan, free: list["Stream"] | None,
                          what: str) -> np.ndarray:  # fmt: skip
        """_run_planned's body, with the stream held."""
        model, c = self.model, self._c
        lib, from_buffer = c.lib, self._from_buffer
        bufs = self._run_bufs
        try:
            if bufs is None or bufs[0] is not plan:
                bufs = self._run_buffers(plan)
            _, sp, xqp, yq, yqp = bufs
            if free is not None:
                rc = lib.rne_stream_reset(self._cstream)
                if rc:  # never on a loaded model (c.check's call spared when it is 0)
                    c.check(rc, what)
            y = np.empty(plan.y_shape, _F32)
            yp = from_buffer(self._floats, y)
            if xqp is None:  # floats of a float model, or ids: as they are
                xp = from_buffer(self._x_ctype, x)
            else:  # floats of an integer model: quantized first
                lib.rne_quantize_s16(from_buffer(self._floats, x), x.size, self._qio[0], xqp)
                xp = xqp
            rc = lib.rne_run(self._cstream, xp, plan.steps, yp if yq is None else yqp, sp,
                             plan.scratch)  # fmt: skip
            if rc == E_INPUT:  # an id out of range: nothing was written
                raise model._ids_fault(x.reshape(plan.x_internal), what)
            if rc:
                c.check(rc, what)
            if yq is not None:
                lib.rne_dequantize_s16(yqp, y.size, self._qio[1], yp)
        except MemoryError:
            nbytes = model._stream_bytes(plan.batch, what) + model._run_bytes(plan.batch, plan.steps,
                                                                              what)  # fmt: skip
            raise _refuse_memory(what, f"batch {plan.batch} over T = {plan.steps} steps", nbytes,
                                 failed=True) from None  # fmt: skip
        if free is not None and len(free) < _RUN_FREE:  # after a run that finished, as
            free.append(self)  # Model.run's checked path
        return y

    def _run_buffers(self, plan: _RunPlan) -> tuple:
        """_run_planned's buffers for `plan`: its scratch and, for an integer model, the int16
        input (floats only; None for ids) and output, with their pointers; kept for the next run
        of the same plan when they are small (_SCRATCH_KEEP)."""
        from_buffer = self._from_buffer
        scratch = self._run_scratch
        if scratch is None or len(scratch) < plan.scratch:
            scratch = _aligned_bytes(plan.scratch)
            if plan.scratch <= _SCRATCH_KEEP:
                self._run_scratch = scratch
        xqp = yq = yqp = None
        n_x = n_y = 0
        if self._qio is not None:
            n_y = int(np.prod(plan.y_shape))
            yq = np.empty(n_y, np.int16)
            yqp = from_buffer("int16_t[]", yq)
            if not self.model._ids:
                n_x = int(np.prod(plan.x_internal))
                xqp = from_buffer("int16_t[]", np.empty(n_x, np.int16))  # the pointer keeps it
        bufs = (plan, from_buffer(scratch), xqp, yq, yqp)
        if plan.scratch <= _SCRATCH_KEEP and 2 * (n_x + n_y) <= _SCRATCH_KEEP:
            self._run_bufs = bufs
        return bufs

    def _run_internal(self, x: np.ndarray, what: str, flush: int = 0) -> np.ndarray:
        """x: contiguous float32 (int32 ids) [T, B, F] -> the output in the graph's layout. The
        scratch is for a chunk of steps where the C library runs the call in chunks. `flush`
        (Model.run of a model with latency): that many zero frames are fed after x and as many
        first output rows dropped, so that the rows are ONNX's (docs/graph.md section 6): the C
        library runs them with rne_run_end, each node's input ending where the real input's does."""
        end = x.shape[0]
        if flush and x.shape[0]:
            x = np.concatenate([x, np.zeros((flush,) + x.shape[1:], x.dtype)], axis=0)
        model, steps = self.model, x.shape[0]
        lib, from_buffer = self._c.lib, self._from_buffer
        if steps == 0 and model.many_to_one:
            raise InputError(
                f"{what}: the sequence is empty (T = 0) and the model outputs its last step"
            )
        need = model.scratch_bytes(self.batch, model._run_steps(steps))
        scratch = self._run_scratch  # the last run's, if large enough (only this call uses it:
        if scratch is None or len(scratch) < need:  # the stream is held below, or Model.run's)
            scratch = _aligned_bytes(need)
            if need <= _SCRATCH_KEEP:
                self._run_scratch = scratch
        shape = (1 if model.many_to_one else steps, self.batch, model.out_features)
        y = np.empty(shape, _F32 if self._qio is None else np.int16)
        ids = x
        if self._qio is not None and not model._ids:
            xq = np.empty(x.shape, np.int16)
            lib.rne_quantize_s16(
                from_buffer("float[]", x), x.size, self._qio[0], from_buffer("int16_t[]", xq)
            )
            x = xq
        if not self._claim():  # as _owned("run"), without a context manager's cost
            raise self._busy("run")
        try:
            rc = lib.rne_run_end(self._cstream, from_buffer(x), steps, end, from_buffer(y),
                                 from_buffer(scratch), len(scratch))
        finally:
            self._release()
        if rc == E_INPUT:  # an id out of range: nothing was written
            raise model._ids_fault(ids, what)
        self._c.check(rc, what)
        if self._qio is not None:
            yf = np.empty(y.shape, _F32)
            lib.rne_dequantize_s16(
                from_buffer("int16_t[]", y), y.size, self._qio[1], from_buffer("float[]", yf)
            )
            y = yf
        if flush and not model.many_to_one:
            y = y[flush:]
        return np.ascontiguousarray(model._run_out.from_internal(y))

    @property
    def latency_steps(self) -> int:
        """Steps the outputs lag ONNX's (docs/graph.md section 6): `step` returns ONNX's output
        for step t - latency_steps (the rows before are the skipped steps' zeros)."""
        return self.model.latency_steps

    def reset(self) -> None:
        """Back to the model's initial state (its initial_h/initial_c, or zeros)."""
        with self._owned("reset"):
            rc = self._c.lib.rne_stream_reset(self._cstream)
        self._c.check(rc, f"{self.model.name}.stream.reset")

    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of the state: the recurrent nodes' as name -> [D, B, H] (h0, c0, h1, ... by
        recurrent node, or the names of the graph's state inputs, [layers * D, B, H] where one
        covers several layers, as PyTorch's h0 does), and each STATE value of the graph (a step
        function's state) under its graph name as [B, *its per-step shape], and each causal
        conv's frame cache (a CONV with a time kernel kt > 1) as NAME.cache (NAME: the conv's
        output value; node<i> where that is not unique) [B, (kt - 1) dt, *its input's per-step shape]: the last input frames the
        conv has seen, oldest first (zeros before the stream's start; docs/graph.md section 7).
        float32 for f32 models; for integer ones the stored integers: h, state values and conv
        caches int16, LSTM c int32 (Q11.20), see docs/quantization.md. Settable with the same
        names and shapes."""
        with self._owned("state"):
            return self._views.get()

    @state.setter
    def state(self, values: Mapping[str, np.ndarray]) -> None:
        with self._owned("state"):
            self._views.set(values, f"{self.model.name}.state")

    def _claim(self) -> bool:
        """Take the stream's token: False if another thread holds it (see __init__)."""
        try:
            self._take()
        except IndexError:
            return False
        return True

    def _release(self) -> None:
        self._give(True)

    def _busy(self, what: str) -> StreamBusyError:
        return StreamBusyError(
            f"{self.model.name}.stream.{what}: another thread is using this stream right now; a "
            "stream is one sequence: give each thread its own (Model.stream), they may run at once"
        )

    @contextmanager
    def _owned(self, what: str) -> Iterator[None]:
        """Hold the stream for one call; a second thread meanwhile gets StreamBusyError."""
        if not self._claim():
            raise self._busy(what)
        try:
            yield
        finally:
            self._release()


def load(path: str | os.PathLike, *, mmap: bool = False) -> Model:
    """Load a .rne file.

    By default the file is read once into a private, aligned copy: the model does not depend on
    the file afterwards, which may then be rewritten, truncated or deleted.

    `mmap=True` maps the file read-only instead (zero copy; the page cache is shared between
    processes that load the same blob). The mapping IS the file: rewriting the file in place
    while the model lives changes the weights it runs with (wrong outputs, and a blob whose
    sizes changed is not re-checked), and truncating it kills the process with SIGBUS at the
    next step that touches a page past the new end. A private (copy-on-write) mapping would not
    help: it shares the pages it has not written, and SIGBUSes on truncation all the same.
    Replacing the file with a new one (write it beside and `os.replace` it, as `rnnedge.convert`
    does) is safe: the mapping keeps the old file's data.

    Anything but a regular file (a directory, a FIFO, a device, a socket) is refused with a
    BlobError naming it, without reading from it (a FIFO is opened non-blocking).
    """
    path = os.fspath(path)
    try:
        kind = file_kind(os.stat(path).st_mode)  # names a socket, which cannot be opened
        if kind is not None:
            raise BlobError(f"{path}: is {kind}, not an rnnedge blob (a regular file)")
        with open(path, "rb", buffering=0, opener=open_nonblocking) as f:
            st = os.fstat(f.fileno())  # the file opened, which may not be the one stat saw
            kind = file_kind(st.st_mode)
            if kind is not None:
                raise BlobError(f"{path}: is {kind}, not an rnnedge blob (a regular file)")
            if st.st_size == 0:
                raise BlobError(f"{path}: the file is empty, not an rnnedge blob")
            if st.st_size > _U32:
                raise BlobError(
                    f"{path}: {_fmt_size(st.st_size)}, larger than any rnnedge blob (under 4 GiB)"
                )
            if mmap:
                data = _mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_READ)
            else:
                data = _read_aligned(f, st.st_size)
    except IsADirectoryError:
        raise BlobError(f"{path}: is a directory, not an rnnedge blob") from None
    except FileNotFoundError:
        raise BlobError(f"{path}: no such file") from None
    except PermissionError:
        raise BlobError(f"{path}: permission denied") from None
    except OSError as e:
        raise BlobError(f"{path}: cannot read: {e.strerror or e}") from None
    except MemoryError:
        raise BlobError(
            f"{path}: {_fmt_size(st.st_size)} do not fit in memory (MemoryError); "
            "rnnedge.load(path, mmap=True) maps the file instead"
        ) from None
    if len(data) == 0:  # truncated to nothing between fstat and read
        raise BlobError(f"{path}: the file is empty, not an rnnedge blob")
    return Model(data, path)


def _read_aligned(f, size: int) -> np.ndarray:
    """Up to `size` bytes of the open file f into new read-only memory at the format's largest
    alignment. A file cut short meanwhile gives what it holds; the reader then names that."""
    buf = _aligned_bytes(size, MAX_ALIGN)
    view, n = memoryview(buf), 0
    while n < size:
        got = f.readinto(view[n:])
        if not got:
            break
        n += got
    buf = buf[:n]
    buf.flags.writeable = False
    return buf
