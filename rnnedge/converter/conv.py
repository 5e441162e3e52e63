"""Convolutional front ends in the graph converter (docs/converter.md "Convolutions",
docs/graph.md section 6): Conv / ConvTranspose, Pad, BatchNormalization, PRelu, Gelu.

A Conv whose spatial axes include the time axis becomes a causal CONV node that keeps its last
(kt - 1) * dt input frames; its ONNX padding along time decides the rest:

- time-begin pad (kt - 1) * dt, time-end 0: exactly causal;
- less at the beginning (symmetric "same" padding: lookahead L = (kt - 1) * dt - begin): the
  output value's delay grows by L (the model's latency), and the end padding must be L so that
  ONNX's output has as many steps as its input;
- more at the end than L (pad-then-chomp: both sides (kt - 1) * dt, then a Slice that drops the
  last frames): the Flow carries the extra ONNX frames (`tail`) until a Slice over time drops
  them; any other op on such a tensor is refused;
- a `Pad` over the time axis (zeros) before the Conv: its frames join the Conv's pads;
- a cache Concat (dag.py `_cache_concat`: a step function's state of n frames Concat-ed before
  the steps along time) read without time padding, n the window (kt - 1) * dt: the causal conv,
  its frame cache the state (the pair leaves the graph, docs/graph.md section 6).

Everything else over time (strides, padding that is neither) is refused by name. The other
spatial axis (at most one) is a feature axis of the step: any stride, padding, dilation, groups.

This module builds on dag.py's walk (Flow, the helpers) and adds its ops to `dag.OPS` when it is
imported (rnnedge/converter/__init__.py imports it, so every use of the converter has them).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import ConvertError, UnsupportedOpError
from ..ir.graph import Concat, Conv, Copy
from ..ir.layers import Act, Dense
from .dag import (OPS, PICK_SLICES, DagWalk, Flow, _act, _axis, _binary, _concat, _dense, _f_index, _flow, _pick,
                  _role_name, _slice_f, pending)
from .node import Node, floats_of, ints_arg
from .values import Const


def _conv_pads(node: Node, n_sp: int, in_sizes: list, kernel: list[int], strides: list[int],
               dil: list[int]) -> list[int]:
    auto = node.str_attr("auto_pad", "NOTSET")
    if auto == "NOTSET":
        pads = node.ints_attr("pads") or [0] * (2 * n_sp)
        if len(pads) != 2 * n_sp or min(pads, default=0) < 0:
            raise node.refuse_attr("pads", pads, f"{2 * n_sp} values >= 0 (begin and end per spatial axis)")
        return list(pads)
    if auto == "VALID":
        return [0] * (2 * n_sp)
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise node.refuse_attr("auto_pad", auto, "NOTSET, VALID, SAME_UPPER or SAME_LOWER")
    begin, end = [], []
    for i in range(n_sp):
        size = in_sizes[i]
        span = (kernel[i] - 1) * dil[i] + 1
        if isinstance(size, int):
            out = -(-size // strides[i])
            total = max((out - 1) * strides[i] + span - size, 0)
        else:  # the time axis (stride 1): out = in
            total = span - 1
        small = total // 2
        b = small if auto == "SAME_UPPER" else total - small
        begin.append(b)
        end.append(total - b)
    return begin + end


def op_conv(w: DagWalk, node: Node, ins: list) -> list:

    x = _flow(ins, 0, "input X")
    transpose = node.op == "ConvTranspose"
    if len(x.roles) < 3:
        raise UnsupportedOpError(f"{node.op} of a data tensor [{x.layout()}]: expected [N, C, spatial...]")
    if "F" in x.roles[0] or x.roles[1] != "F":
        raise UnsupportedOpError(
            f"{node.op} of [{x.layout()}]: its axis 0 (N) must be the batch or time and batch, its axis "
            "1 (C) a feature axis"
        )
    wt = floats_of(ins[1], "input W (the weight)", np.float32)
    n_sp = len(x.roles) - 2
    if wt.ndim != n_sp + 2:
        raise ConvertError(f"{node.op} weight of shape {list(wt.shape)} for {n_sp} spatial axes")
    sp_roles = x.roles[2:]
    t_axes = [i for i, r in enumerate(sp_roles) if r != "F"]
    f_axes = [i for i, r in enumerate(sp_roles) if r == "F"]
    if any(sp_roles[i] != "T" for i in t_axes) or len(t_axes) > 1:
        raise UnsupportedOpError(f"{node.op} over the {', '.join(_role_name(sp_roles[i]) for i in t_axes)} "
                                 f"axis of [{x.layout()}]: only over time and the features of a step")
    kernel = list(wt.shape[2:])
    if node.has("kernel_shape") and list(node.ints_attr("kernel_shape") or []) != kernel:
        raise node.refuse_attr("kernel_shape", node.ints_attr("kernel_shape"), f"the weight's {kernel}")
    strides = list(node.ints_attr("strides") or [1] * n_sp)
    dil = list(node.ints_attr("dilations") or [1] * n_sp)
    for key, vals in (("strides", strides), ("dilations", dil)):
        if len(vals) != n_sp or min(vals) < 1:
            raise node.refuse_attr(key, vals, f"{n_sp} values >= 1")
    if min(kernel, default=1) < 1:
        raise ConvertError(f"{node.op} weight of shape {list(wt.shape)} has an empty kernel")
    groups = node.int_attr("group", 1)
    c_in = int(x.shape[1])  # type: ignore[arg-type]
    given_pads = None
    if transpose and sum(1 for i in f_axes if x.shape[2 + i] != 1) > 1:
        as_conv = _transpose_as_conv(node, wt, kernel, strides, dil, groups, c_in)
        if as_conv is not None:  # gtcrn's decoder: stride 1 over the cached window of a step
            wt, given_pads = as_conv
            transpose = False
            w.note(node, "stride 1: the Conv it equals (the kernel flipped, the channel axes swapped, pads "
                         f"{given_pads})")
    if groups < 1 or c_in % groups:
        raise node.refuse_attr("group", groups, f"a divisor of the {c_in} input channels")
    if transpose:
        if t_axes and (kernel[t_axes[0]] != 1 or strides[t_axes[0]] != 1
                       or (node.ints_attr("output_padding") or [0] * n_sp)[t_axes[0]]):
            raise UnsupportedOpError("ConvTranspose over the time axis (kernel, stride or output padding "
                                     "above 1 along time: an upsampling in time); only over the features of a step")
        if wt.shape[0] != c_in:
            raise ConvertError(f"ConvTranspose weight {list(wt.shape)} for {c_in} input channels")
        if node.has("output_shape"):
            raise node.refuse_attr("output_shape", node.ints_attr("output_shape"), "pads and output_padding")
    elif wt.shape[1] * groups != c_in or wt.shape[0] % groups:
        raise ConvertError(f"{node.op} weight {list(wt.shape)} with group={groups} for {c_in} input channels")
    sizes = sizes0 = [x.shape[2 + i] for i in range(n_sp)]
    pads = given_pads if given_pads is not None else _conv_pads(node, n_sp, sizes, kernel, strides, dil)
    out_pads = (node.ints_attr("output_padding") or [0] * n_sp) if transpose else [0] * n_sp
    # a feature axis of one element, kernel 1, no padding (gtcrn's time axis of one frame within a
    # step): its output is that element, so the conv is one over the other axes
    unit = [i for i in f_axes if sizes[i] == 1 and kernel[i] == 1 and not pads[i] and not pads[n_sp + i]
            and not (i < len(out_pads) and out_pads[i])] if len(f_axes) > 1 else []
    if unit and len(unit) == len(f_axes):  # all of one element: the last stays the conv's W
        unit = unit[:-1]
    window = None  # a feature axis whose whole extent is the kernel's window: folded into the channels
    if len(f_axes) - len(unit) == 2 and not transpose and x.cache is None and x.tpad == (0, 0) and x.wpad == (0, 0):
        window = next((i for i in f_axes if i not in unit and not pads[i] and not pads[n_sp + i]
                       and (kernel[i] - 1) * dil[i] + 1 == sizes[i]), None)
    if window is not None:  # gtcrn's cached frames within a step: Concat(cache, frame) [C, 1 + 2 dt, F]
        x, wt = _fold_window(w, x, wt, 2 + window, kernel[window], dil[window])
        c_in = int(x.shape[1])  # type: ignore[arg-type]
        keep = [i for i in range(n_sp) if i != window]
        sp_roles = tuple(sp_roles[i] for i in keep)
        kernel, strides, dil, sizes = ([a[i] for i in keep] for a in (kernel, strides, dil, sizes))
        pads = [pads[i] for i in keep] + [pads[n_sp + i] for i in keep]
        out_pads = [out_pads[i] for i in keep]
        f_axes = [keep.index(i) for i in f_axes if i != window]
        t_axes = [keep.index(i) for i in t_axes]
        unit = [keep.index(i) for i in unit]
        n_sp -= 1
    if len(f_axes) - len(unit) > 1:
        raise UnsupportedOpError(f"{node.op} over {len(f_axes) - len(unit)} feature axes of [{x.layout()}]: at "
                                 "most one (with or without the time axis; besides axes of one element, "
                                 "kernel 1 and no padding)")
    f_axes = [i for i in f_axes if i not in unit]
    it = t_axes[0] if t_axes else None
    iw = f_axes[0] if f_axes else None
    tp_b, tp_e = x.tpad
    cache = x.cache
    if cache is not None:  # Concat(state, x) over time: the state's frames are the conv's window
        tp_b, x = tp_b + cache[1], replace(x, cache=None)
        if it is None:  # pragma: no cover - a cache Concat is over the time axis
            raise ConvertError("internal: a cache Concat without a time axis")
        causal = (kernel[it] - 1) * dil[it]
        if pads[it] or pads[n_sp + it] or tp_e or cache[1] != causal or cache[0] in w.cache_convs:
            why = ("its cache is read by another Conv too" if cache[0] in w.cache_convs else
                   f"the cache must be the conv's whole window, (kernel - 1) * dilation = {causal} frames, "
                   "and the conv unpadded over time")
            raise UnsupportedOpError(
                f"{node.op} over a cache Concat of {cache[1]} frames of state {w.values[cache[0]].name!r} "
                f"before the steps, kernel {kernel[it]}, dilation {dil[it]}, time pads "
                f"{[pads[it], pads[n_sp + it]]}: {why}"
            )
    if it is None and (tp_b or tp_e):  # pragma: no cover - a time Pad has a time axis
        raise ConvertError("internal: time padding without a time axis")
    kt = kernel[it] if it is not None else 1
    dt = dil[it] if it is not None else 1
    if it is not None:
        if strides[it] != 1:
            raise node.refuse_attr("strides", strides, f"1 along the time axis (axis {2 + it}): a stride over "
                                   "time drops steps, which rnnedge does not stream")
        if x.tail:
            raise UnsupportedOpError(f"{node.op} of a tensor that still has {x.tail} frames past the input's end "
                                     "(a chomp Slice missing)")
        begin = pads[it] + tp_b
        end = pads[n_sp + it] + tp_e
        causal = (kt - 1) * dt
        if begin > causal:
            raise UnsupportedOpError(
                f"{node.op} pads {begin} frames before the time axis, more than (kernel - 1) * dilation = "
                f"{causal}: its output starts before its input"
            )
        lookahead = causal - begin
        tail = end - lookahead
        shortens = -tail if tail < 0 and getattr(w.loaded.model, "producer_name", "") == "tf2onnx" else 0
        if shortens:  # Keras's Conv1D "valid" (tf2onnx): as the Keras reader makes it, docs/keras.md
            tail = 0
        if tail < 0:
            raise UnsupportedOpError(
                f"{node.op} pads {begin} frames before and {end} after along time with kernel {kt} and "
                f"dilation {dt}: the output is {-tail} steps shorter than the input; rnnedge streams "
                "convs over time whose output has the input's length (causal, 'same', or pad-then-chomp)"
            )
    else:
        lookahead = tail = shortens = 0
    kw = kernel[iw] if iw is not None else 1
    sw = strides[iw] if iw is not None else 1
    dw = dil[iw] if iw is not None else 1
    pw = (pads[iw], pads[n_sp + iw]) if iw is not None else (0, 0)
    if x.wpad != (0, 0):  # a zero Pad of W folded into the conv (op_pad checked the axis)
        pw = (pw[0] + x.wpad[0], pw[1] + x.wpad[1])
    # the weight as [C_out, C_in / g, kt, kw] (transpose: [C_in, C_out / g, 1, kw])
    perm = [0, 1] + [2 + i for i in (it, iw) if i is not None] + [2 + i for i in unit]
    w4 = wt.transpose(perm).reshape(wt.shape[0], wt.shape[1], kt, kw)
    bias = None if len(ins) < 3 or ins[2] is None else floats_of(ins[2], "input B (the bias)", np.float32).reshape(-1)
    out_pad = 0
    if transpose:
        op_attr = node.ints_attr("output_padding") or [0] * n_sp
        if len(op_attr) != n_sp or min(op_attr) < 0:
            raise node.refuse_attr("output_padding", op_attr, f"{n_sp} values >= 0")
        out_pad = op_attr[iw] if iw is not None else 0
    conv = Conv(np.ascontiguousarray(w4, np.float32), bias, dt=dt, groups=groups, sw=sw, pad_w=pw, dw=dw,
                transpose=transpose, out_pad=out_pad)
    if bias is not None and bias.shape[0] != conv.c_out:
        raise ConvertError(f"{node.op} bias of {bias.shape[0]} values for {conv.c_out} output channels")
    w_in = int(x.shape[2 + iw]) - x.wpad[0] - x.wpad[1] if iw is not None else 1  # type: ignore[arg-type]
    w_out = conv.w_out(w_in)
    if w_out < 1:
        raise ConvertError(f"{node.op} over {w_in} features with kernel {kw}, stride {sw}, pads {list(pw)}, "
                           f"dilation {dw} has no output")
    in_shape = (c_in, w_in) if iw is not None else (c_in,)
    out_shape = (conv.c_out, w_out) if iw is not None else (conv.c_out,)
    if not transpose and kt == 1 and groups == 1 and w_in == 1 and w_out == 1 and pw == (0, 0) and not lookahead:
        # a 1x1 conv of one position (Keras Conv1D k1 on a [C, 1] step): a Dense over the channels,
        # which every format runs (an integer CONV needs run_qgraph's conv oracle)
        src = w.shaped(replace(x, tpad=(0, 0), wpad=(0, 0)), (c_in,))
        v = w.add(Dense(np.ascontiguousarray(w4.reshape(conv.c_out, c_in), np.float32), bias), [src],
                  [(conv.c_out,)], node.name)[0]
        if iw is not None:
            v = w.add(Copy(), [v], [out_shape], f"{node.name}/copy")[0]
        shape = list(x.shape)
        shape[1] = conv.c_out
        w.note(node, "a 1x1 conv of one position: a Dense over its channels")
        return [_unfold(Flow(v, x.roles, tuple(shape), x.reversed, tail=tail), window)]  # type: ignore[arg-type]
    src = w.shaped(replace(x, tpad=(0, 0), wpad=(0, 0)), in_shape)
    if lookahead and src in w.short:  # its end padding would read the rows past ONNX's end
        w.check_end(None, w.short[src], "its end padding (it looks ahead)")
    v = w.add(conv, [src], [out_shape], node.name)[0]
    if cache is not None:
        w.cache_convs[cache[0]] = w.nodes[-1]
    w.values[v].delay += lookahead
    if shortens:
        s0 = w.short.get(v, (0, node.name))[0]
        w.short[v] = (s0 + shortens, node.name)
        w.note(node, f"'valid' over time ({shortens} steps shorter than its input): computed as the conv looking "
                     f"{lookahead} steps ahead; Model.run's last {shortens} rows are past ONNX's end (docs/keras.md)")
    shape = list(x.shape)
    shape[1] = conv.c_out
    if iw is not None:
        shape[2 + iw] = w_out
    if lookahead:
        w.note(node, f"looks {lookahead} steps ahead: the stream's output lags by {lookahead} more steps")
    if window is not None:
        w.note(node, f"its window over axis {2 + window} (all {int(sizes0[window])} elements, one output) is "
                     "folded into the input channels: a conv over the other axis")
    return [_unfold(Flow(v, x.roles, tuple(shape), x.reversed, tail=tail), window)]  # type: ignore[arg-type]


def _transpose_as_conv(node: Node, wt: np.ndarray, kernel: list[int], strides: list[int], dil: list[int],
                       groups: int, c_in: int) -> tuple[np.ndarray, list[int]] | None:
    """A ConvTranspose of stride 1 (no output padding, explicit pads p <= (k - 1) d) as the Conv
    it equals: the kernel flipped, the channel axes swapped within each group, pads (k - 1) d - p;
    None when it is not one."""
    n_sp = len(kernel)
    if any(s != 1 for s in strides) or any(node.ints_attr("output_padding") or []) or node.has("output_shape") \
            or node.str_attr("auto_pad", "NOTSET") != "NOTSET" or wt.shape[0] != c_in or c_in % groups:
        return None
    pads = list(node.ints_attr("pads") or [0] * (2 * n_sp))
    if len(pads) != 2 * n_sp:
        return None
    span = [(kernel[i] - 1) * dil[i] for i in range(n_sp)]
    new = [span[i % n_sp] - p for i, p in enumerate(pads)]
    if min(new) < 0:
        return None
    cig, cog = c_in // groups, wt.shape[1]
    w = wt.reshape((groups, cig, cog) + wt.shape[2:]).swapaxes(1, 2)
    w = w[(slice(None),) * 3 + (slice(None, None, -1),) * n_sp]
    return np.ascontiguousarray(w.reshape((groups * cog, cig) + wt.shape[2:]), np.float32), new


def _fold_window(w: DagWalk, x: Flow, wt: np.ndarray, axis: int, k: int, d: int) -> tuple[Flow, np.ndarray]:
    """x [N, C, ..., H (axis), ...] read by a kernel of k taps, dilation d, that spans all of H
    (no padding: one output): the k rows it reads (a Slice of step d) moved into the channels,
    [N, C k, ...]; the weight [C_out, C_in / g, ..., k, ...] likewise [C_out, C_in / g * k, ...].
    The axes between C and H must be of one element (the channels and H are adjacent in memory)."""
    if any(x.shape[i] != 1 for i in range(2, axis)):
        raise UnsupportedOpError(f"a Conv window over axis {axis} of [{x.layout()}] that is not next to the "
                                 "channels (axis 1)")
    rows = _slice_f(w, x, axis, 0, (k - 1) * d + 1, d) if d > 1 else x
    roles = rows.roles[:axis] + rows.roles[axis + 1 :]
    shape = list(rows.shape[:axis] + rows.shape[axis + 1 :])
    shape[1] = int(shape[1]) * k  # type: ignore[call-overload]
    sp = axis - 2
    perm = [0, 1, 2 + sp] + [2 + i for i in range(wt.ndim - 2) if i != sp]
    w2 = wt.transpose(perm)
    w2 = w2.reshape((w2.shape[0], w2.shape[1] * k) + w2.shape[3:])
    return Flow(rows.value, roles, tuple(shape)), np.ascontiguousarray(w2, np.float32)


def _unfold(y: Flow, window: int | None) -> Flow:
    """A conv's output with the window axis that _fold_window took out back, of one element."""
    if window is None:
        return y
    a = 2 + window
    return replace(y, roles=y.roles[:a] + ("F",) + y.roles[a:], shape=y.shape[:a] + (1,) + y.shape[a:])


def op_pad(w, node: Node, ins: list) -> list:

    x = _flow(ins, 0, "input data")
    mode = node.str_attr("mode", "constant")
    pads = ints_arg(node, ins, 1, "pads")
    n = len(x.roles)
    if pads is None:
        raise ConvertError("Pad without pads")
    axes = list(range(n))
    if len(ins) > 3 and ins[3] is not None:

        axes = [_axis(a, n, "Pad axes") for a in ints_arg(node, ins, 3, "axes") or []]
    if len(pads) != 2 * len(axes):
        raise node.refuse_attr("pads", pads, f"{2 * len(axes)} values")
    value = 0.0
    if mode == "constant":
        if len(ins) > 2 and ins[2] is not None:
            value = float(floats_of(ins[2], "constant_value").reshape(-1)[0])
        elif node.has("value"):
            value = node.float_attr("value", 0.0)
    elif mode not in ("reflect", "edge"):
        raise node.refuse_attr("mode", mode, "constant, reflect or edge")
    for k, a in enumerate(axes):
        b, e = pads[k], pads[len(axes) + k]
        if not (b or e):
            continue
        if b < 0 or e < 0:
            raise UnsupportedOpError(f"Pad with negative pads {pads} (a crop): use a Slice")
        if x.roles[a] == "T":
            if mode != "constant" or value != 0.0:
                raise UnsupportedOpError(f"Pad of the time axis in mode {mode!r} (value {value}): only zeros "
                                         "before a Conv over time")
            tb, te = x.tpad
            x = replace(x, tpad=(tb + b, te + e))
            continue
        _f_index(x, a, "Pad")
        if mode == "constant" and value == 0.0 and _conv_pads_axis(w, node, x, a):
            x = replace(x, wpad=(x.wpad[0] + b, x.wpad[1] + e))
            shape = list(x.shape)
            shape[a] = int(shape[a]) + b + e  # type: ignore[call-overload]
            x = replace(x, shape=tuple(shape))
            continue
        x = _pad_f(w, x, a, b, e, mode, value)
    return [x]


def _conv_pads_axis(w: DagWalk, node: Node, x: Flow, axis: int) -> bool:
    """Whether zeros padded along `axis` can be the pads of the Pad's only reader: a Conv (not a
    ConvTranspose) whose one feature spatial axis it is, the Pad's output no graph output."""
    out = node.outputs[0]
    readers = [n for n in w.graph.node if out in n.input]
    if len(readers) != 1 or out in {o.name for o in w.graph.output}:
        return False
    r = readers[0]
    if r.op_type != "Conv" or r.domain not in ("", "ai.onnx") or list(r.input).index(out) != 0:
        return False
    spatial = [i for i in range(2, len(x.roles)) if x.roles[i] == "F" and (i == axis or x.shape[i] != 1)]
    return spatial == [axis]


def _pad_f(w, x, axis: int, b: int, e: int, mode: str, value: float):
    """Pad along a feature axis: slices and concats of the tensor (reflect, edge) or of a constant
    row (constant)."""

    n = int(x.shape[axis])
    pieces_b, pieces_e = [], []
    if mode == "constant":
        const = np.full(_step_shape_with(x, axis, 1), value, np.float32)
        one = _const_like(w, x, axis, const)
        pieces_b, pieces_e = [one] * b, [one] * e
    else:
        if mode == "reflect" and (b >= n or e >= n):
            raise UnsupportedOpError(f"Pad reflect of {b}/{e} elements of an axis of {n}")
        if axis == len(x.roles) - 1 and b + e > PICK_SLICES:  # a long pad: a copy by Dense, not per element
            pick_b = [0] * b if mode == "edge" else list(range(b, 0, -1))
            pick_e = [n - 1] * e if mode == "edge" else list(range(n - 2, n - 2 - e, -1))
            parts = ([_pick(w, x, pick_b, "Pad")] if b else []) + [x] + ([_pick(w, x, pick_e, "Pad")] if e else [])
            return _concat(w, parts, axis)
        for i in range(b):
            j = 0 if mode == "edge" else b - i
            pieces_b.append(_slice_f(w, x, axis, j, j + 1, 1))
        for i in range(e):
            j = n - 1 if mode == "edge" else n - 2 - i
            pieces_e.append(_slice_f(w, x, axis, j, j + 1, 1))
    return _concat(w, pieces_b + [x] + pieces_e, axis)


def _step_shape_with(x, axis: int, size: int) -> tuple[int, ...]:
    return tuple(size if i == axis else int(d) for i, d in enumerate(x.shape) if x.roles[i] == "F")


def _const_like(w, x, axis: int, const: np.ndarray):
    """A data tensor equal to `const` in every row: x's one-element slice times 0 plus const."""

    zero = _slice_f(w, x, axis, 0, 1, 1)
    return _binary(w, "Add", _binary(w, "Mul", zero, _const(0.0)), _const_f(x, axis, const))


def _const(v: float):

    return Const(np.asarray(v, np.float32))


def _const_f(x, axis: int, const: np.ndarray):

    full = const.reshape(tuple(int(d) if r == "F" and i != axis else 1 for i, (d, r) in
                               enumerate(zip(x.shape, x.roles))))
    return Const(np.ascontiguousarray(full, np.float32))


def op_batchnorm(w, node: Node, ins: list) -> list:
    """BatchNormalization (inference): y = (x - mean) / sqrt(var + eps) * scale + B over axis 1.
    Folded into the Conv or Dense that wrote x when x has no other reader (exact up to float
    rounding of the folded weights); otherwise a per-channel affine (Binary Mul, Binary Add)."""

    x = _flow(ins, 0, "input X")
    if node.int_attr("training_mode", 0):
        raise node.refuse_attr("training_mode", 1, "0 (inference)")
    scale, bias, mean, var = (floats_of(ins[k], n).reshape(-1) for k, n in
                              ((1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")))
    if not scale.size == bias.size == mean.size == var.size:
        raise ConvertError(f"BatchNormalization scale, B, mean, var of {scale.size}, {bias.size}, "
                           f"{mean.size}, {var.size} values: one per channel each")
    eps = node.float_attr("epsilon", 1e-5)
    if np.any(var + eps <= 0):
        raise ConvertError(f"BatchNormalization input_var + epsilon is not positive: {(var + eps).min()}")
    a = scale / np.sqrt(var + eps)
    c = bias - mean * a
    ch = 1 if len(x.roles) > 1 else 0
    if x.roles[ch] != "F" or int(x.shape[ch]) != a.size:  # type: ignore[arg-type]
        raise UnsupportedOpError(f"BatchNormalization over axis {ch} of [{x.layout()}] with {a.size} channels: "
                                 "only over a feature axis")
    if _fold_into_writer(w, x, ch, a, c):
        w.folded.append(f"BatchNormalization {node.name} (into the node before)")
        return [x]
    sh = tuple(a.size if i == ch else 1 for i in range(len(x.roles)))

    y = _binary(w, "Mul", x, Const(a.reshape(sh).astype(np.float32)))
    return [_binary(w, "Add", y, Const(c.reshape(sh).astype(np.float32)))]


def _fold_into_writer(w, x, ch: int, a: np.ndarray, c: np.ndarray) -> bool:
    """Scale the output channels of the Conv / Dense that wrote x by a, shift by c, if nothing
    reads x yet and the channel axis is the conv's channels (or the dense's outputs)."""
    writer = next((n for n in w.nodes if n.outputs and n.outputs[0] == x.value), None)
    if writer is None or pending(x):  # (gtcrn writes its cache between a conv and its BatchNormalization)
        return False
    if any(x.value in n.inputs for n in w.nodes) or w.values[x.value].kind != "temp":
        return False
    op = writer.op
    if isinstance(op, Conv) and ch == 1 and not op.transpose:
        op.weight = np.ascontiguousarray(op.weight * a.astype(np.float32)[:, None, None, None], np.float32)
        b = np.zeros(a.size, np.float64) if op.bias is None else op.bias.astype(np.float64)
        op.bias = (b * a + c).astype(np.float32)
        return True
    if isinstance(op, Dense) and ch == len(x.roles) - 1 and op.out_features == a.size:
        op.weight = np.ascontiguousarray(op.weight * a.astype(np.float32)[None, :]
                                         if op.weight.shape[-1] == a.size else op.weight * a.astype(np.float32)[:, None],
                                         np.float32)
        b = np.zeros(a.size, np.float64) if op.bias is None else op.bias.astype(np.float64)
        op.bias = (b * a + c).astype(np.float32)
        return True
    return False


def op_prelu(w, node: Node, ins: list) -> list:
    """PRelu: a scalar slope is a LeakyRelu; a slope per channel is max(x, 0) + slope * min(x, 0)."""

    x = _flow(ins, 0, "input X")
    slope = floats_of(ins[1], "input slope", np.float32)
    if slope.size == 1:
        return [_act(w, x, Act.make("LeakyRelu", float(slope.reshape(-1)[0])))]
    pos = _binary(w, "Max", x, Const(np.zeros((), np.float32)))
    neg = _binary(w, "Min", x, Const(np.zeros((), np.float32)))
    return [_binary(w, "Add", pos, _binary(w, "Mul", neg, Const(slope)))]


def op_gelu(w, node: Node, ins: list) -> list:
    """Gelu (opset 20): 0.5 x (1 + erf(x / sqrt 2)); approximate='tanh':
    0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""

    x = _flow(ins, 0, "input X")

    def k(v: float) -> Const:
        return Const(np.asarray(v, np.float32))

    approx = node.str_attr("approximate", "none")
    if approx == "tanh":
        cube = _binary(w, "Mul", _binary(w, "Mul", x, x), x)
        inner = _binary(w, "Add", x, _binary(w, "Mul", cube, k(0.044715)))
        t = _act(w, _binary(w, "Mul", inner, k(float(np.sqrt(2 / np.pi)))), Act.make("Tanh"))
    elif approx == "none":
        t = _act(w, _binary(w, "Mul", x, k(float(1 / np.sqrt(2)))), Act.make("Erf"))
    else:
        raise node.refuse_attr("approximate", approx, "none or tanh")
    return [_binary(w, "Mul", _binary(w, "Mul", x, k(0.5)), _binary(w, "Add", t, k(1.0)))]


def op_silu(w, node: Node, ins: list) -> list:
    """HardSwish: x * HardSigmoid(x; 1/6, 0.5)."""

    x = _flow(ins, 0, "input X")
    return [_binary(w, "Mul", x, _act(w, x, Act.make("HardSigmoid", 1 / 6, 0.5)))]


CONV_OPS = {
    "Conv": op_conv, "ConvTranspose": op_conv, "Pad": op_pad, "BatchNormalization": op_batchnorm,
    "PRelu": op_prelu, "Gelu": op_gelu, "HardSwish": op_silu,
}  # fmt: skip
OPS.update(CONV_OPS)
