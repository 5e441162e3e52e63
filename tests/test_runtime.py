"""The C runtime through the Python API: every case of the table against onnxruntime, streaming
against sequence mode, state handling, and the errors a user meets."""

from __future__ import annotations

import os
import re
import socket
import struct
import threading

import numpy as np
import pytest

import rnnedge
from onnx_cases import CASES, Built, assert_close, onnx_outputs
from rnnedge.blob.write import write_blob
from rnnedge.model import _aligned_bytes

BUILT = {c.name: c.build() for c in CASES}
STREAMABLE = [c for c in CASES if BUILT[c.name].network.streamable]


def model_of(built: Built) -> rnnedge.Model:
    return rnnedge.Model.from_bytes(write_blob(built.network), source=built.network.name)


def graph_input(built: Built) -> np.ndarray:
    return built.feeds[built.model.graph.input[0].name]


def graph_state(built: Built) -> dict[str, np.ndarray] | None:
    return {s.name: built.feeds[s.name] for s in built.network.state} or None


def batch_of(built: Built) -> int:
    axes = built.network.input.axes
    return graph_input(built).shape[axes.index("B")] if "B" in axes else 1


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_run_matches_onnx(case):
    built = BUILT[case.name]
    model = model_of(built)
    want = onnx_outputs(built)[built.model.graph.output[0].name]
    y = model.run(graph_input(built), state=graph_state(built))
    assert y.dtype == np.float32
    assert_close(y, want, case.name)


def _steps(model: rnnedge.Model, built: Built, x: np.ndarray) -> list[np.ndarray]:
    stream = model.stream(batch=batch_of(built))
    if graph_state(built):
        stream.state = graph_state(built)
    t_axis = built.network.input.axes.index("T")
    return [stream.step(np.take(x, t, axis=t_axis)) for t in range(x.shape[t_axis])]


@pytest.mark.parametrize("case", STREAMABLE, ids=lambda c: c.name)
def test_stream_equals_run(case):
    """Step by step equals one call over the whole sequence, bit for bit (same kernels, same
    summation order). For a many-to-one model, step t equals run on the first t+1 steps."""
    built = BUILT[case.name]
    model = model_of(built)
    x = graph_input(built)
    steps = _steps(model, built, x)
    t_in = built.network.input.axes.index("T")
    if model.many_to_one:
        for t, y_t in enumerate(steps):
            prefix = np.take(x, range(t + 1), axis=t_in)
            np.testing.assert_array_equal(y_t, model.run(prefix, state=graph_state(built)))
    else:
        y = model.run(x, state=graph_state(built))
        t_out = built.network.output.axes.index("T")
        np.testing.assert_array_equal(np.stack(steps, axis=t_out), y)


@pytest.mark.parametrize("case", STREAMABLE, ids=lambda c: c.name)
def test_step_into_equals_step(case):
    """step_into(x, out) writes into `out` what step(x) returns, bit for bit, step after step,
    whatever the output layout (a layout the C library does not write takes the checked path)."""
    built = BUILT[case.name]
    model = model_of(built)
    x = graph_input(built)
    a, b = model.stream(batch=batch_of(built)), model.stream(batch=batch_of(built))
    if graph_state(built):
        a.state = b.state = graph_state(built)
    t_axis = built.network.input.axes.index("T")
    out = None
    for t in range(x.shape[t_axis]):
        want = a.step(np.take(x, t, axis=t_axis))
        if out is None:
            out = np.empty_like(want)
        assert b.step_into(np.take(x, t, axis=t_axis), out) is out
        np.testing.assert_array_equal(out, want)


def test_step_into_rebinds_when_either_array_changes(lstm):
    """step_into keeps the C call bound to its last input and output: a new input, a new out,
    both, an input it converts (float64, a list) or an array whose dtype changed in place are each
    checked again; every call writes what step returns into the out it was given."""
    model, built = lstm
    x = graph_input(built)  # [T, 2, 3]
    a, b = model.stream(batch=2), model.stream(batch=2)
    shape = a.step(x[0]).shape
    a.reset()
    outs = [np.empty(shape, np.float32), np.empty(shape, np.float32)]
    frames = [np.ascontiguousarray(x[0]), np.ascontiguousarray(x[1])]
    calls = [(frames[0], outs[0]), (frames[0], outs[0]), (frames[1], outs[0]), (frames[1], outs[1]),
             (frames[0], outs[1]), (frames[1].astype(np.float64), outs[1]), (frames[0].tolist(), outs[0]),
             (frames[0], outs[0])]
    for frame, out in calls:
        want = a.step(frame)
        assert b.step_into(frame, out) is out
        np.testing.assert_array_equal(out, want)
    changed = frames[0].copy()
    b.step_into(changed, outs[0])
    a.step(changed)
    changed.dtype = np.int32  # the same bytes, read as another dtype: converted, not reused
    want = a.step(changed)
    np.testing.assert_array_equal(b.step_into(changed, outs[0]), want)


STATE_OUT = [c for c in CASES if any(s.output for s in BUILT[c.name].network.state)]


@pytest.mark.parametrize("case", STATE_OUT, ids=lambda c: c.name)
def test_run_returns_the_final_state_as_the_graph_outputs_it(case):
    """Model.run(..., return_state=True): the output as without it, and the final state under
    Stream.state's names, equal to the graph's state outputs (hn, cn) by onnxruntime."""
    built = BUILT[case.name]
    model = model_of(built)
    x, start = graph_input(built), graph_state(built)
    want = onnx_outputs(built)
    y, final = model.run(x, state=start, return_state=True)
    np.testing.assert_array_equal(y, model.run(x, state=start))
    assert_close(y, want[built.model.graph.output[0].name], case.name)
    assert {s.name for s in built.network.state} <= set(final)
    for s in built.network.state:
        if s.output:
            assert_close(final[s.name], want[s.output], f"{case.name} {s.output}")
    y2, again = model.run(x, state=start, return_state=True)  # the same from a kept stream
    np.testing.assert_array_equal(y2, y)
    for name in final:
        np.testing.assert_array_equal(again[name], final[name])


def test_run_return_state_continues_as_a_stream(lstm):
    """The final state of Model.run(return_state=True) is Stream.state after the same steps: a
    run from it continues the sequence."""
    model, built = lstm
    x = graph_input(built)
    s = model.stream(batch=2)
    whole = s.run(np.concatenate([x, x]))
    y, final = model.run(x, return_state=True)
    np.testing.assert_array_equal(y, whole[: len(x)])
    np.testing.assert_array_equal(model.run(x, state=final), whole[len(x):])
    for name, value in model.stream(batch=2).state.items():
        assert final[name].shape == value.shape and final[name].dtype == value.dtype


def test_stream_run_takes_steps_without_their_batch_axis(lstm):
    """At batch 1 Stream.run takes [T, F] for [T, 1, F] (as step takes [F]) and returns the
    output without its batch axis; a batch-2 stream does not, and a wrong shape names both."""
    model, built = lstm
    x = graph_input(built)[:, :1]  # [T, 1, 3]
    a, b = model.stream(1), model.stream(1)
    want = a.run(x)
    got = b.run(x[:, 0].tolist())
    np.testing.assert_array_equal(got, np.squeeze(want, axis=model._run_out.axes.index("B")))
    np.testing.assert_array_equal(a.state["h0"], b.state["h0"])
    with pytest.raises(rnnedge.InputError, match=r"batch 1 takes shape \[T, B, 3\] or, without the "
                                                 r"batch axis, \[T, 3\]; got \[4, 5\]"):
        b.run(np.zeros((4, 5), np.float32))
    with pytest.raises(rnnedge.InputError, match=r"expected shape \[T, B, 3\].*got \[4, 3\]"):
        model.stream(2).run(np.zeros((4, 3), np.float32))


def test_step_into_takes_a_frame_without_its_batch_axis(lstm):
    """At batch 1 step takes [F] and returns its output without the batch axis; step_into then
    wants `out` of that shape too, and writes what step returns."""
    model, built = lstm
    x = graph_input(built)[:, 0]  # [T, F] of one stream
    a, b = model.stream(1), model.stream(1)
    out = np.empty_like(a.step(x[0]))
    a.reset()
    for t in range(len(x)):
        want = a.step(x[t])
        assert b.step_into(x[t], out) is out
        np.testing.assert_array_equal(out, want)
    with pytest.raises(rnnedge.InputError, match="out has shape"):
        b.step_into(x[0], np.empty(want.shape + (1,), np.float32))


def test_step_into_refuses_an_out_it_cannot_write(lstm):
    model, _ = lstm
    s = model.stream(batch=2)
    x = np.zeros((2, 3), np.float32)
    shape = s.step(x).shape
    ro = np.zeros(shape, np.float32)
    ro.flags.writeable = False
    bad = [
        ([0.0] * 10, "must be a numpy array, got list"),
        (np.zeros(shape, np.float64), "float32 array; got dtype float64"),
        (np.zeros(shape[:-1] + (shape[-1] * 2,), np.float32)[..., ::2], "not C-contiguous"),
        (ro, "read-only"),
        (np.zeros((7,), np.float32), rf"out has shape \[7\]; a step's output has shape {re.escape(str(list(shape)))}"),
    ]
    before = s.state
    for out, match in bad:
        with pytest.raises(rnnedge.InputError, match=match):
            s.step_into(x, out)
    after = s.state  # refused before the C call: the state did not move
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
    with pytest.raises(rnnedge.InputError, match="batch 2"):
        s.step_into(np.zeros((3, 3), np.float32), np.zeros(shape, np.float32))


def test_not_streamable_refuses_stream():
    built = BUILT["lstm_bidirectional"]
    with pytest.raises(rnnedge.NotStreamableError, match="backwards"):
        model_of(built).stream()


# -- state ---------------------------------------------------------------------------------------
@pytest.fixture
def lstm() -> tuple[rnnedge.Model, Built]:
    built = BUILT["lstm_peepholes"]
    return model_of(built), built


def test_state_round_trip_and_reset(lstm):
    model, built = lstm
    s = model.stream(batch=2)
    assert sorted(s.state) == ["c0", "h0"]
    rng = np.random.default_rng(0)
    new = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in s.state.items()}
    s.state = new
    for k in new:
        np.testing.assert_array_equal(s.state[k], new[k])
    s.state["h0"][...] = 7  # a copy: changing it leaves the stream alone
    np.testing.assert_array_equal(s.state["h0"], new["h0"])
    s.reset()
    assert all(not v.any() for v in s.state.values())


def test_state_continues_a_sequence(lstm):
    """Stepping to t, saving the state, and restoring it into a new stream continues the sequence."""
    model, built = lstm
    x = graph_input(built)  # [T, B, F]
    a = model.stream(batch=2)
    ya = [a.step(x[t]) for t in range(len(x))]
    b = model.stream(batch=2)
    b.step(x[0])
    c = model.stream(batch=2)
    c.state = b.state
    yc = [c.step(x[t]) for t in range(1, len(x))]
    np.testing.assert_array_equal(np.stack(ya[1:]), np.stack(yc))


def test_streams_are_independent_and_batch_equals_singles(lstm):
    model, built = lstm
    x = graph_input(built)  # [T, 2, F]
    both = model.stream(batch=2)
    singles = [model.stream(batch=1), model.stream(batch=1)]
    for t in range(len(x)):
        y2 = both.step(x[t])
        for b, s in enumerate(singles):
            np.testing.assert_array_equal(s.step(x[t, b : b + 1]), y2[:, b : b + 1])  # y2 is [D, B, H]


def test_run_leaves_no_state_behind(lstm):
    model, built = lstm
    x = graph_input(built)
    np.testing.assert_array_equal(model.run(x), model.run(x))


def test_streams_step_from_threads(lstm):
    """Streams of one model stepped from several threads give what they give one after another."""
    model, built = lstm
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((4, 200, 1, 3)).astype(np.float32)
    want = [np.stack([s.step(v) for v in seq]) for s, seq in ((model.stream(), q) for q in xs)]
    got: list[np.ndarray | None] = [None] * len(xs)

    def work(i: int) -> None:
        s = model.stream()
        got[i] = np.stack([s.step(v) for v in xs[i]])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w, g in zip(want, got):
        np.testing.assert_array_equal(w, g)


def test_bad_state_is_refused_and_changes_nothing(lstm):
    model, _ = lstm
    s = model.stream(batch=2)
    before = s.state
    with pytest.raises(rnnedge.InputError, match=r"expected float32 values of shape \[1, 2, 5\]"):
        s.state = {"h0": np.ones((1, 2, 5)), "c0": np.ones((1, 1, 5))}
    with pytest.raises(rnnedge.InputError, match="unknown state"):
        s.state = {"h9": np.ones((1, 2, 5))}
    for k in before:
        np.testing.assert_array_equal(s.state[k], before[k])


# -- inputs --------------------------------------------------------------------------------------
def test_inputs_are_converted_not_rejected(lstm):
    model, built = lstm
    x = graph_input(built)
    want = model.run(x)
    np.testing.assert_array_equal(model.run(x.astype(np.float64)), want)
    fortran = np.asfortranarray(x)
    np.testing.assert_array_equal(model.run(fortran), want)
    s, t = model.stream(batch=2), model.stream(batch=2)
    wide = np.zeros((2, 6), np.float32)
    wide[:, ::2] = x[0]  # a non-contiguous view
    np.testing.assert_array_equal(s.step(wide[:, ::2]), t.step(x[0].tolist()))


@pytest.mark.parametrize(
    "shape, match",
    [
        ((4, 2), r"expected shape \[T, B, 3\]"),
        ((4, 2, 5), r"expected shape \[T, B, 3\].*got \[4, 2, 5\]"),
    ],
)
def test_run_wrong_shape(lstm, shape, match):
    model, _ = lstm
    with pytest.raises(rnnedge.InputError, match=match):
        model.run(np.zeros(shape, np.float32))


def test_step_wrong_batch_and_dtype(lstm):
    model, _ = lstm
    s = model.stream(batch=2)
    with pytest.raises(rnnedge.InputError, match=r"batch 2: expected shape \[2, 3\].*got \[1, 3\]"):
        s.step(np.zeros((1, 3), np.float32))
    with pytest.raises(rnnedge.InputError, match="expected a float32 array, got dtype <U1"):
        s.step(np.array([["a", "b", "c"]] * 2))


def test_empty_sequence(lstm):
    model, _ = lstm
    assert model.run(np.zeros((0, 2, 3), np.float32)).shape == (0, 1, 2, 5)
    many_to_one = model_of(BUILT["lstm_yh"])
    with pytest.raises(rnnedge.InputError, match=r"empty \(T = 0\)"):
        many_to_one.run(np.zeros((0, 2, 3), np.float32))


# -- loading -------------------------------------------------------------------------------------
@pytest.fixture
def blob() -> bytes:
    return write_blob(BUILT["gru_forward"].network)


def _rewrite_weights(buf, blob: bytes) -> None:
    """Zero the first tensor's data of the blob held in buf (a writable buffer or open file)."""
    first = rnnedge.Model.from_bytes(blob).blob.tensors[0]
    if hasattr(buf, "seek"):
        buf.seek(first.offset)
        buf.write(bytes(first.nbytes))
        buf.flush()
    else:
        memoryview(buf).cast("B")[first.offset : first.offset + first.nbytes] = bytes(first.nbytes)


def test_load_reads_the_file_into_the_process(tmp_path, blob):
    """The default load keeps its own copy: rewriting the file in place, truncating it and
    deleting it under a live stream changes nothing (the old mmap changed the weights, and a
    truncation was a SIGBUS)."""
    path = tmp_path / "m.rne"
    path.write_bytes(blob)
    model = rnnedge.load(path)
    assert "GRU" in repr(model)
    x = graph_input(BUILT["gru_forward"])
    want = rnnedge.Model.from_bytes(blob).run(x)
    s, ref = model.stream(batch=2), rnnedge.Model.from_bytes(blob).stream(batch=2)
    np.testing.assert_array_equal(s.step(x[0]), ref.step(x[0]))
    with open(path, "r+b") as f:
        _rewrite_weights(f, blob)
    np.testing.assert_array_equal(model.run(x), want)
    np.testing.assert_array_equal(s.step(x[1]), ref.step(x[1]))
    with open(path, "r+b") as f:
        f.truncate(0)
    np.testing.assert_array_equal(model.run(x), want)
    np.testing.assert_array_equal(s.step(x[2]), ref.step(x[2]))
    path.unlink()
    np.testing.assert_array_equal(s.run(x[3:]), ref.run(x[3:]))


def test_load_mmap_maps_the_file(tmp_path, blob):
    """mmap=True: the same model, zero copy; a file replaced by a new one (os.replace, as
    rnnedge.convert writes) leaves the mapped model as it was."""
    path = tmp_path / "m.rne"
    path.write_bytes(blob)
    model = rnnedge.load(path, mmap=True)
    x = graph_input(BUILT["gru_forward"])
    want = rnnedge.Model.from_bytes(blob).run(x)
    np.testing.assert_array_equal(model.run(x), want)
    other = tmp_path / "new.rne"
    other.write_bytes(write_blob(BUILT["lstm_forward"].network))
    os.replace(other, path)
    np.testing.assert_array_equal(model.run(x), want)
    with pytest.raises(TypeError):
        rnnedge.load(path, True)  # keyword only: load(path, mmap=True) says what it does


def test_from_bytes_copies_a_writable_buffer(blob):
    """A writable buffer (numpy, bytearray, memoryview of either), or a read-only view of a
    writable one, is copied: changing it afterwards does not change the model (the old code used
    an aligned numpy buffer in place)."""
    x = graph_input(BUILT["gru_forward"])
    want = rnnedge.Model.from_bytes(blob).run(x)
    aligned = _aligned_bytes(len(blob))  # aligned: the old code took it in place
    aligned[:] = np.frombuffer(blob, np.uint8)
    frozen = aligned.view()
    frozen.flags.writeable = False
    ba = bytearray(blob)
    models = [(aligned, rnnedge.Model.from_bytes(aligned)),
              (aligned, rnnedge.Model.from_bytes(memoryview(aligned))),
              (aligned, rnnedge.Model.from_bytes(frozen)),
              (ba, rnnedge.Model.from_bytes(ba))]
    for buf, _ in models:
        _rewrite_weights(buf, blob)
    for k, (_, model) in enumerate(models):
        np.testing.assert_array_equal(model.run(x), want, err_msg=f"buffer {k}")


def test_from_bytes_refuses_what_is_not_a_buffer():
    with pytest.raises(rnnedge.InputError, match="expected the blob as bytes.*got NoneType"):
        rnnedge.Model.from_bytes(None)


def test_from_bytes_copies_a_misaligned_buffer(blob):
    shifted = bytearray(len(blob) + 1)
    shifted[1:] = blob
    model = rnnedge.Model.from_bytes(memoryview(shifted)[1:])
    x = graph_input(BUILT["gru_forward"])
    np.testing.assert_array_equal(model.run(x), rnnedge.Model.from_bytes(blob).run(x))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p, b: p, "no such file"),
        (lambda p, b: (p.write_bytes(b""), p)[1], "empty"),
        (lambda p, b: (p.mkdir(), p)[1], "directory"),
        (lambda p, b: (p.write_bytes(b[: len(b) // 2]), p)[1], "trunc|shorter"),
        (lambda p, b: (p.write_bytes(b"not a model at all" * 8), p)[1], "magic"),
        (lambda p, b: (p.write_bytes(b[:4] + struct.pack("<I", 3) + b[8:]), p)[1],
         "format version 3 is newer"),
        # a version-1 blob (the layer pipeline): refused with the way out
        (lambda p, b: (p.write_bytes(b[:4] + struct.pack("<I", 1) + b[8:]), p)[1],
         r"format version 1 .*reconvert it with rnnedge convert"),
        (lambda p, b: (p.write_bytes(b[:100] + bytes([b[100] ^ 1]) + b[101:]), p)[1],
         "checksum"),
    ],
    ids=["missing", "empty", "directory", "truncated", "not-a-blob", "future-version",
             "version-1", "bit-flip"],
)
def test_load_errors(tmp_path, blob, make, match):
    path = make(tmp_path / "m.rne", blob)
    with pytest.raises(rnnedge.BlobError, match=match) as info:
        rnnedge.load(path)
    assert str(path) in str(info.value)


def test_a_stream_busy_in_another_thread_is_refused():
    """While one thread is inside a call on a stream (here: holding the stream as such a call
    does), any other call on that stream is refused; the stream works again afterwards."""
    model = model_of(BUILT["lstm_forward"])
    s = model.stream(batch=2)
    x = np.zeros((2, 3), np.float32)
    assert s._claim()  # as rne_step in flight on another thread would
    try:
        out = np.zeros((1, 2, 5), np.float32)
        for call in (lambda: s.step(x), lambda: s.step_into(x, out), lambda: s.run(x[None]),
                     s.reset, lambda: s.state):
            with pytest.raises(rnnedge.StreamBusyError, match="another thread is using this stream"):
                call()
    finally:
        s._release()
    assert s.step(x).shape == (1, 2, 5)


def test_nan_and_inf_in_float_models_propagate(lstm):
    """f32: a NaN input makes the outputs it reaches NaN (never a crash, never a finite guess);
    +-inf saturates the gates like a huge finite value would, so outputs stay finite."""
    model, built = lstm
    x = graph_input(built).copy()
    x[1, 0, 0] = np.nan
    y = model.run(x)
    assert np.isnan(y[1:, :, 0]).all() and not np.isnan(y[:1]).any() and not np.isnan(y[:, :, 1]).any()
    x = graph_input(built).copy()
    x[1, 0, 0], x[2, 1, 2] = np.inf, -np.inf
    big = graph_input(built).copy()
    big[1, 0, 0], big[2, 1, 2] = 1e30, -1e30
    np.testing.assert_array_equal(model.run(x), model.run(big))


def test_a_very_long_sequence(lstm):
    model, built = lstm
    x = np.random.default_rng(2).standard_normal((100_000, 2, 3)).astype(np.float32)
    y = model.run(x)
    s = model.stream(batch=2)
    s.run(x[:60_000])
    np.testing.assert_array_equal(s.run(x[60_000:]), y[60_000:])
    assert np.isfinite(y).all()


def test_unreadable_file(tmp_path, monkeypatch, blob):
    path = tmp_path / "m.rne"
    path.write_bytes(blob)
    real_open = open

    def refuse(p, *a, **k):
        if str(p) == str(path):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, *a, **k)

    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(rnnedge.BlobError, match="m.rne: permission denied"):
        rnnedge.load(path)


def test_load_refuses_a_fifo_without_blocking(tmp_path):
    """A FIFO is refused by name, never opened for a blocking read: with a writer holding it
    open (so the old code's open returned, and read it as an empty file) and without one (the
    old code's open blocked until a writer came: here the test opens one to end the wait)."""
    fifo = tmp_path / "m.rne"
    os.mkfifo(fifo)
    held = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a reader and writer: nothing blocks
    try:
        with pytest.raises(rnnedge.BlobError, match=r"m\.rne: is a FIFO \(named pipe\), not an rnnedge blob"):
            rnnedge.load(fifo)
    finally:
        os.close(held)
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            rnnedge.load(fifo)
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(60)  # not a timing bar: a guard that ends a blocked open instead of hanging the suite
    if t.is_alive():
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # lets the blocked open return
        t.join()
        os.close(writer)
        pytest.fail("rnnedge.load blocked opening a FIFO that has no writer")
    assert isinstance(outcome[0], rnnedge.BlobError) and "is a FIFO" in str(outcome[0])


def test_load_refuses_devices_and_sockets(tmp_path):
    with pytest.raises(rnnedge.BlobError, match="/dev/zero: is a character device, not an rnnedge blob"):
        rnnedge.load("/dev/zero")
    path = tmp_path / "s.rne"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(rnnedge.BlobError, match=r"s\.rne: is a socket, not an rnnedge blob"):
            rnnedge.load(path)


# -- sizes ---------------------------------------------------------------------------------------
GB16 = 16 * 10**9


def test_a_batch_the_c_api_cannot_take_is_refused(lstm):
    model, _ = lstm
    for call in (lambda: model.stream(2**32), lambda: model.state_bytes(2**32),
                 lambda: model.scratch_bytes(1, 2**32)):
        with pytest.raises(rnnedge.InputError, match=r"must be an integer from 1 to 4294967295.*got 4294967296"):
            call()


def test_model_run_keeps_no_state_between_calls(lstm):
    """Model.run keeps its streams (and their scratch) for the next run of that batch: each run
    still starts from the initial state, or the state given to that call only."""
    model, built = lstm
    x = graph_input(built)
    fresh = model_of(built).run(x)
    s = model.stream(batch=2)
    s.run(x)  # some state that is not the initial one
    moved = s.state
    with_state = model.run(x, state=moved)
    assert not np.array_equal(with_state, fresh)
    for _ in range(3):
        np.testing.assert_array_equal(model.run(x), fresh)
    np.testing.assert_array_equal(model.run(x, state=moved), with_state)
    np.testing.assert_array_equal(model.run(x[:, :1]), model_of(built).run(x[:, :1]))  # batch 1
    np.testing.assert_array_equal(model.run(x), fresh)
    assert all(len(kept) <= 2 for kept in model._run_free.values())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_repeated_run_equals_the_first(case):
    """A run of an array of a shape that ran before (float32, C-contiguous: Model.run's fast
    path, where the layout allows it) gives the same numbers as the first, in memory of its own."""
    built = BUILT[case.name]
    model = model_of(built)
    x = np.ascontiguousarray(graph_input(built), dtype=np.float32)
    first = model.run(x)
    again = [model.run(x) for _ in range(3)]
    for y in again:
        np.testing.assert_array_equal(y, first)
        assert y.flags.c_contiguous and y.flags.writeable and y.dtype == np.float32
        assert not any(np.shares_memory(y, other) for other in [first, *again] if other is not y)
    np.testing.assert_array_equal(model.run(x.copy(order="F")), first)  # not contiguous: checked
    np.testing.assert_array_equal(model.run(x.astype(np.float64)), first)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_stream_run_chunks_of_a_planned_shape_go_on_from_the_state(case):
    """Stream.run of chunks of one shape (float32, C-contiguous: the fast path once a plan for
    that shape exists, made by the first chunk) goes on from the stream's state exactly as the
    checked path does: the same numbers, chunk by chunk, and the same state, as a stream fed
    each chunk in another dtype (checked every time)."""
    built = BUILT[case.name]
    model = model_of(built)
    if not model.streamable:  # a reversed direction: no stream, and Stream.run with it
        with pytest.raises(rnnedge.NotStreamableError, match="cannot be stepped"):
            model.stream()
        return
    axes = model._run_in.axes
    x = graph_input(built)
    if "B" in axes:  # batch 1: a layout whose conversion to [T, B, F] is a reshape (plannable)
        x = np.take(x, [0], axis=axes.find("B"))
    chunks = [np.ascontiguousarray(c, dtype=np.float32)
              for c in np.array_split(x, 3, axis=axes.find("T"))]
    chunk = chunks[0].shape
    chunks = [c for c in chunks if c.shape == chunk]  # one shape: the first plans, the rest use it
    fast, checked = model.stream(), model.stream()
    for c in chunks:
        np.testing.assert_array_equal(fast.run(c), checked.run(c.astype(np.float64)))
    # the fast path ran (a test of it, not of a timing); a model with latency plans nothing
    assert (chunk in model._run_plans) == (model.latency_steps == 0)
    for name, v in checked.state.items():
        np.testing.assert_array_equal(fast.state[name], v)
    fast.reset()
    np.testing.assert_array_equal(fast.run(chunks[0]), model.run(chunks[0]))
    other = model.stream(batch=fast.batch + 1)  # another batch: the plan is not taken
    with pytest.raises(rnnedge.InputError, match=f"this stream has batch {fast.batch + 1}"):
        other.run(chunks[0])


def test_planned_runs_check_what_the_plan_does_not_cover(lstm):
    """After a plan for a shape exists: another shape, a dtype to convert and a state to start
    from still go through the checks (the same refusals), and batch 1 (a layout that is a
    reshape of [T, B, F] here) takes the plan."""
    model, built = lstm
    x = np.ascontiguousarray(graph_input(built)[:, :1])  # [T, 1, 3]: TDBH output, a reshape
    want = model_of(built).run(x)
    for _ in range(3):
        np.testing.assert_array_equal(model.run(x), want)
    assert x.shape in model._run_plans  # the fast path ran (a test of it, not of a timing)
    with pytest.raises(rnnedge.InputError, match=r"expected shape \[T, B, 3\].*got \[4, 1, 5\]"):
        model.run(np.zeros((4, 1, 5), np.float32))
    with pytest.raises(rnnedge.InputError, match="expected a float32 array, got dtype <U1"):
        model.run(np.full(x.shape, "a"))
    state = {k: np.ones_like(v) for k, v in model.stream().state.items()}
    stream = model.stream()
    stream.state = state
    np.testing.assert_array_equal(model.run(x, state=state), stream.run(x))
    np.testing.assert_array_equal(model.run(x), want)


def test_model_run_from_threads_at_once(lstm):
    """Threads running one model at once each get a stream of their own (kept ones or new)."""
    model, built = lstm
    rng = np.random.default_rng(7)
    xs = [rng.standard_normal(graph_input(built).shape).astype(np.float32) for _ in range(8)]
    want = [model_of(built).run(x) for x in xs]
    got: list = [None] * len(xs)
    errors: list = []

    def work(i: int) -> None:
        try:
            for _ in range(50):
                got[i] = model.run(xs[i])
                np.testing.assert_array_equal(got[i], want[i])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_a_stream_larger_than_memory_is_refused_with_its_size(lstm, monkeypatch):
    """The rule: a stream whose state, scratch and buffers exceed the machine's physical memory
    is refused before anything is allocated, with the figure (the old code let numpy raise
    MemoryError, or, under overcommit, allocated and then wrote it all)."""
    model, _ = lstm
    monkeypatch.setattr("rnnedge._memory.physical_memory", lambda: GB16)
    with pytest.raises(rnnedge.InputError, match=r"stream: batch 1000000000 needs (\d+\.\d) GB of state, "
                       r"scratch and buffers; more than this machine's 16\.0 GB of memory") as info:
        model.stream(10**9)
    figure = float(re.search(r"needs (\d+\.\d) GB", str(info.value)).group(1))
    assert figure >= round((model.state_bytes(10**9) + model.scratch_bytes(10**9)) / 1e9, 1)


def test_a_failed_allocation_is_an_input_error_with_its_size(lstm, monkeypatch):
    """Where the OS does not say how much memory there is, numpy's MemoryError is reported as
    an InputError with the figure."""
    model, built = lstm
    monkeypatch.setattr("rnnedge._memory.physical_memory", lambda: None)

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr("rnnedge.model._aligned_bytes", no_memory)
    with pytest.raises(rnnedge.InputError, match=r"stream: batch 1000 needs \d+ bytes .*allocation failed"):
        model.stream(1000)
    with pytest.raises(rnnedge.InputError, match=r"run: batch 2 over T = 4 steps needs .*allocation failed"):
        model.run(graph_input(built))


def test_a_run_larger_than_memory_is_refused_with_its_size(lstm, monkeypatch):
    """Model.run and Stream.run size the input copy, scratch and output first: a broadcast input
    of batch 10^9 (no memory of its own) or of 2^32 steps is refused, not copied."""
    model, _ = lstm
    monkeypatch.setattr("rnnedge._memory.physical_memory", lambda: GB16)
    huge_batch = np.broadcast_to(np.zeros(3, np.float32), (2, 10**9, 3))
    with pytest.raises(rnnedge.InputError,
                       match=r"run: batch 1000000000 over T = 2 steps needs \d+\.\d GB .*16\.0 GB"):
        model.run(huge_batch)
    long = np.broadcast_to(np.zeros(3, np.float32), (2**32, 1, 3))
    with pytest.raises(rnnedge.InputError, match="steps must be an integer from 1 to 4294967295"):
        model.run(long)
    with pytest.raises(rnnedge.InputError, match="steps must be an integer from 1 to 4294967295"):
        model.stream().run(long)
    very_long = np.broadcast_to(np.zeros(3, np.float32), (2**31, 1, 3))
    with pytest.raises(rnnedge.InputError, match=r"stream\.run: batch 1 over T = 2147483648 steps needs \d+\.\d GB"):
        model.stream().run(very_long)


def test_state_that_is_not_a_mapping_is_refused(lstm):
    model, built = lstm
    s = model.stream(batch=2)
    before = s.state
    for value in (None, [("h0", before["h0"])], before["h0"], "h0"):
        with pytest.raises(rnnedge.InputError,
                           match=r"state: expected a mapping of state name -> array \(this model has \['c0', 'h0'\]"):
            s.state = value
    with pytest.raises(rnnedge.InputError, match="expected a mapping"):
        model.run(graph_input(built), state=before["h0"])
    with pytest.raises(rnnedge.InputError, match="unknown state 'x', 1"):
        s.state = {1: before["h0"], "x": before["h0"]}
    for k in before:
        np.testing.assert_array_equal(s.state[k], before[k])


def test_a_graph_with_its_batch_fixed_at_one_runs_batch_one_only(tmp_path):
    """Input [T, 1, F] and an output without a batch axis (Y_h squeezed): batch 2 is refused by
    name, not left to a numpy ValueError in the output layout."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((1, 12, 4)).astype(np.float32), "W")
    r = numpy_helper.from_array(rng.standard_normal((1, 12, 3)).astype(np.float32), "R")
    axes = numpy_helper.from_array(np.array([0, 1], np.int64), "axes")
    graph = helper.make_graph(
        [helper.make_node("LSTM", ["x", "W", "R"], ["Y", "Yh"], hidden_size=3),
         helper.make_node("Squeeze", ["Yh", "axes"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", 1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])], [w, r, axes])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "m.onnx")
    rnnedge.convert(tmp_path / "m.onnx", tmp_path / "m.rne")
    model = rnnedge.load(tmp_path / "m.rne")
    assert model.run(np.zeros((5, 1, 4), np.float32)).shape == (3,)
    with pytest.raises(rnnedge.InputError, match="output has no batch axis.*not 2"):
        model.run(np.zeros((5, 2, 4), np.float32))
    with pytest.raises(rnnedge.InputError, match="output has no batch axis.*not 2"):
        model.stream(2)


def test_a_batch_1_stream_takes_the_frame_without_its_batch_axis(lstm):
    """issue 14, item 8: step(np.zeros(F)) on a batch-1 stream is the frame [1, F] and returns
    the output without its batch axis; [1, F] keeps returning [1, out]."""
    model, _ = lstm
    x = np.random.default_rng(1).standard_normal((6, model.in_features)).astype(np.float32)
    s, t = model.stream(batch=1), model.stream(batch=1)
    for frame in x:
        y1, y = s.step(frame[None]), t.step(frame)
        b = model.output_spec["axes"].replace("T", "").index("B")  # ONNX LSTM Y: [dirs, B, H]
        assert y.shape == y1.shape[:b] + y1.shape[b + 1 :] and y1.shape[b] == 1
        np.testing.assert_array_equal(y, np.squeeze(y1, axis=b))
    with pytest.raises(rnnedge.InputError, match=r"got \[2\]; a stream of batch 1 also takes one "
                       r"frame without its batch axis, shape \[3\]"):  # fmt: skip
        s.step(np.zeros(2, np.float32))
    with pytest.raises(rnnedge.InputError, match=r"expected shape \[B, 3\] \(B batch, then 3 features\)"):
        model.stream(batch=2).step(np.zeros(3, np.float32))  # batch 2: no time axis named
