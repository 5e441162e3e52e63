"""Make the convolutional fixtures of tests/data/fixtures/conv/ (provenance: tests/data/MANIFEST.md).

    python tests/make_conv_fixtures.py [NAME ...]      # needs torch (2.13 CPU) with onnxscript
    python tests/make_conv_fixtures.py fsmn_cache      # onnx.helper only (fsmn_cache below)

Small PyTorch models with convolutional front ends, trained briefly (150 Adam steps, seeded by
name) on a toy task (a squashed running sum of a random signal, delayed so that causal models can
learn it), exported by torch.onnx.export (dynamo=False, and dynamo=True for the keyword spotter).
Each NAME gets NAME.onnx and NAME.input.npy (a [T, B, ...] sequence in the graph's per-step
layout); index.json lists the exporter, opset, latency and what each covers. Tests compute the
expected outputs with onnxruntime.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "data" / "fixtures" / "conv"
I, H, O, T, B = 8, 12, 3, 14, 2
MEL, FR = 10, 6  # the CRNN's log-mel bins; the per-frame conv's samples
STEPS = 150


def toy(rng: np.random.Generator, n: int, t: int, feat: int = I) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, t, feat)).astype(np.float32)
    s = np.cumsum(x, axis=1) * 0.3
    y = np.tanh(np.stack([s[..., 0], s[..., 1] - s[..., 2], x[..., 3]], -1)).astype(np.float32)
    return x, y


def build(name: str):  # -> (module, example input, input names, output names, per-step input shape)
    import torch
    from torch import nn

    torch.manual_seed(sum(map(ord, name)))
    rng = np.random.default_rng(sum(map(ord, name)))

    class Chomp(nn.Module):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.n = n

        def forward(self, x):
            return x[:, :, : -self.n]

    feat = I
    if name.startswith("kws"):  # causal dilated Conv1d + BN + ReLU (x2) -> GRU -> Linear
        chomp = name.endswith("chomp")

        def causal(c_in, c_out, k, d):
            p = (k - 1) * d
            if chomp:
                return [nn.Conv1d(c_in, c_out, k, dilation=d, padding=p), Chomp(p)]
            return [nn.ConstantPad1d((p, 0), 0.0), nn.Conv1d(c_in, c_out, k, dilation=d)] if name.endswith("pad") \
                else [_CausalPads(c_in, c_out, k, d)]

        class Kws(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.front = nn.Sequential(*causal(I, 16, 3, 1), nn.BatchNorm1d(16), nn.ReLU(),
                                           *causal(16, 16, 3, 2), nn.BatchNorm1d(16), nn.ReLU())
                self.gru = nn.GRU(16, H, batch_first=True)
                self.head = nn.Linear(H, O)

            def forward(self, x):  # [B, T, I]
                z = self.front(x.transpose(1, 2)).transpose(1, 2)
                y, _ = self.gru(z)
                return self.head(y)

        m = Kws()
    elif name == "crnn_conv2d":  # [B, T, MEL] log-mel -> Conv2d (3 in time causal, 3 over mel) -> GRU
        feat = MEL

        class Crnn(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv2d(1, 4, (3, 3), padding=(2, 1), stride=(1, 2))
                self.bn = nn.BatchNorm2d(4)
                self.act = nn.PReLU(4)
                self.gru = nn.GRU(4 * 5, H, batch_first=True)
                self.head = nn.Linear(H, O)

            def forward(self, x):  # [B, T, MEL]
                z = self.conv(x.unsqueeze(1))[:, :, :-2]  # causal in time (pad 2, chomp 2)
                z = self.act(self.bn(z))  # [B, 4, T, 5]
                z = z.permute(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], 4 * 5)
                y, _ = self.gru(z)
                return self.head(y)

        m = Crnn()
    elif name == "tcn_residual":  # TCN blocks: causal dilated conv, ReLU, conv, + residual
        class Block(nn.Module):
            def __init__(self, c, d) -> None:
                super().__init__()
                self.c1 = _CausalPads(c, c, 3, d)
                self.c2 = _CausalPads(c, c, 3, d)

            def forward(self, x):
                return torch.relu(x + self.c2(torch.relu(self.c1(x))))

        class Tcn(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inp = nn.Conv1d(I, 12, 1)
                self.blocks = nn.Sequential(Block(12, 1), Block(12, 2), Block(12, 4))
                self.lstm = nn.LSTM(12, H, batch_first=True)
                self.head = nn.Linear(H, O)

            def forward(self, x):
                z = self.blocks(self.inp(x.transpose(1, 2))).transpose(1, 2)
                y, _ = self.lstm(z)
                return self.head(y)

        m = Tcn()
    elif name == "dwsep_lstm":  # depthwise (groups = C) causal conv + pointwise conv -> LSTM
        class Dw(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.dw = _CausalPads(I, I, 5, 1, groups=I)
                self.pw = nn.Conv1d(I, 16, 1)
                self.lstm = nn.LSTM(16, H, batch_first=True)
                self.head = nn.Linear(H, O)

            def forward(self, x):
                z = torch.nn.functional.silu(self.pw(self.dw(x.transpose(1, 2)))).transpose(1, 2)
                y, _ = self.lstm(z)
                return self.head(y)

        m = Dw()
    elif name == "lookahead_gru":  # a non-causal ('same') Conv1d over time: 2 steps of lookahead
        class La(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv1d(I, 16, 5, padding=2)
                self.gru = nn.GRU(16, H, batch_first=True)
                self.head = nn.Linear(H, O)

            def forward(self, x):
                z = nn.functional.gelu(self.conv(x.transpose(1, 2))).transpose(1, 2)
                y, _ = self.gru(z)
                return self.head(y)

        m = La()
    elif name == "chained_lookahead":  # 'same' Conv1d -> ReLU -> 'same' Conv1d: the second looks
        class Ch(nn.Module):              # ahead from a value the first computes, not the input
            def __init__(self) -> None:
                super().__init__()
                self.c1 = nn.Conv1d(I, 12, 3, padding=1)
                self.c2 = nn.Conv1d(12, 12, 5, padding=2)
                self.gru = nn.GRU(12, H, batch_first=True)
                self.head = nn.Linear(H, O)

            def forward(self, x):
                z = self.c2(torch.relu(self.c1(x.transpose(1, 2)))).transpose(1, 2)
                y, _ = self.gru(torch.tanh(z))
                return self.head(y)

        m = Ch()
    elif name == "frame_conv_lstm":  # a Conv1d over the FR samples of each frame (time kernel 1)
        feat = FR

        class Fr(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv2d(1, 3, (1, 3), padding=(0, 1))
                self.lstm = nn.LSTM(3 * FR, H, batch_first=True)
                self.head = nn.Linear(H, O)

            def forward(self, x):  # [B, T, FR]
                z = torch.tanh(self.conv(x.unsqueeze(1)))  # [B, 3, T, FR]
                z = z.permute(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], 3 * FR)
                y, _ = self.lstm(z)
                return self.head(y)

        m = Fr()
    else:
        raise SystemExit(f"unknown fixture {name!r}")
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(STEPS):
        x, y = toy(rng, 16, T, feat)
        loss = ((m(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval(), torch.zeros(B, T, feat), ["x"], ["y"], feat


def _CausalPads(c_in, c_out, k, d, groups=1):
    """A causal Conv1d as F.pad((k - 1) d, 0) + Conv1d (the exporters write a Pad node, then the
    Conv; kws_pads folds the Pad into the Conv's `pads`)."""
    from torch import nn

    class C(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.p = (k - 1) * d
            self.conv = nn.Conv1d(c_in, c_out, k, dilation=d, groups=groups)

        def forward(self, x):
            return self.conv(nn.functional.pad(x, (self.p, 0)))

    return C()


# name: (exporter, opset, latency, what it covers)
FIXTURES = {
    "kws_pad": ("torch", 17, 0, "keyword spotter: causal dilated Conv1d (k 3, d 1 and 2) as ConstantPad1d + Conv, BatchNorm folded, ReLU -> GRU -> Linear"),
    "kws_pads": ("torch", 17, 0, "kws_pad with each Pad folded into its Conv's pads attribute ([(k-1)d, 0], as tf2onnx writes Keras padding='causal'): graph surgery on kws_pad.onnx"),
    "kws_chomp": ("torch", 17, 0, "the same with padding as pad-then-chomp: Conv pads (k-1)d both sides, then a Slice drops the last (k-1)d frames"),
    "kws_dynamo": ("dynamo", 18, 0, "the keyword spotter (F.pad + Conv) through the dynamo exporter, which writes each pad as the Conv's pads [(k-1)d, 0] and folds the BatchNorms into the Convs"),
    "crnn_conv2d": ("torch", 17, 0, "CRNN over log-mel frames: Conv2d (3 causal in time by pad-then-chomp, 3 over mel with stride 2, pad 1) + BatchNorm2d + PReLU per channel -> GRU"),
    "tcn_residual": ("torch", 17, 0, "TCN: a 1x1 Conv1d and three residual blocks of causal dilated (1, 2, 4) convs -> LSTM"),
    "dwsep_lstm": ("torch", 17, 0, "depthwise (groups = channels, k 5) causal Conv1d + pointwise Conv1d + SiLU -> LSTM"),
    "lookahead_gru": ("torch", 17, 2, "a non-causal Conv1d over time (k 5, padding 2: 2 steps of lookahead) + GELU (erf) -> GRU"),
    "chained_lookahead": ("torch", 17, 3, "two non-causal Conv1d over time (k 3 pad 1, then k 5 pad 2: 1 + 2 steps of lookahead) with a ReLU between -> Tanh -> GRU: the second conv looks ahead from a computed value, so Model.run is exact only with each node's own end (rne_run_end, docs/graph.md section 6), and the stream's zero frames after x do not give ONNX's last steps"),
    "frame_conv_lstm": ("torch", 17, 0, "a Conv over the 6 samples of each frame (Conv2d kernel (1, 3), pad 1) + Tanh -> LSTM"),
}  # fmt: skip


def fold_pads(src: Path, dst: Path) -> None:
    """Each Pad (zeros before the time axis) that feeds a Conv becomes that Conv's `pads`."""
    import onnx
    from onnx import helper

    m = onnx.load(str(src))
    g = m.graph
    by_out = {o: n for n in g.node for o in n.output}
    drop = []
    for n in g.node:
        if n.op_type != "Conv" or by_out.get(n.input[0]) is None or by_out[n.input[0]].op_type != "Pad":
            continue
        pad = by_out[n.input[0]]
        at = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        k, d = at["kernel_shape"][0], at.get("dilations", [1])[0]
        n.input[0] = pad.input[0]  # the exporter computes the Pad's pads through a shape chain
        for a in list(n.attribute):
            if a.name == "pads":
                n.attribute.remove(a)
        n.attribute.append(helper.make_attribute("pads", [(k - 1) * d, 0]))
        drop.append(pad)
    for pad in drop:
        g.node.remove(pad)
    while True:  # the Pads' shape chains and constants are dead now
        used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            g.node.remove(n)
    for init in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(init)
    onnx.checker.check_model(m)
    onnx.save(m, str(dst))


def export(name: str) -> dict:
    import torch

    if name == "kws_pads":
        if not (OUT / "kws_pad.onnx").exists():
            export("kws_pad")
        fold_pads(OUT / "kws_pad.onnx", OUT / "kws_pads.onnx")
        np.save(OUT / "kws_pads.input.npy", np.load(OUT / "kws_pad.input.npy"))
        return {"exporter": "torch.onnx.export(dynamo=False), Pad folded into Conv pads (fold_pads)",
                "opset": 17, "latency": 0, "covers": FIXTURES[name][3]}
    exporter, opset, latency, covers = FIXTURES[name]
    module, arg, ins, outs, feat = build(name)
    path = OUT / f"{name}.onnx"
    dyn = {n: {0: "batch", 1: "seq"} for n in ins + outs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torch":
            torch.onnx.export(module, (arg,), str(path), dynamo=False, input_names=ins, output_names=outs,
                              dynamic_axes=dyn, opset_version=opset)
        else:
            shapes = ({0: torch.export.Dim("batch"), 1: torch.export.Dim("seq", min=2)},)
            program = torch.onnx.export(module, (arg,), dynamo=True, input_names=ins, output_names=outs,
                                        dynamic_shapes=shapes, opset_version=opset)
            program.save(str(path), external_data=False)
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
            from make_fixtures import strip_metadata

            strip_metadata(path)
    rng = np.random.default_rng(sum(map(ord, name)) + 7)
    x, _ = toy(rng, B, T, feat)
    np.save(OUT / f"{name}.input.npy", x.transpose(1, 0, 2))  # [T, B, F]
    return {"exporter": {"torch": "torch.onnx.export(dynamo=False)", "dynamo": "torch.onnx.export(dynamo=True)"}[exporter],
            "opset": opset, "latency": latency, "covers": covers}


# the FSMN memory block (FunASR's FSMN VAD, tools/real_models.py `fsmn_vad`) as a step function
# written with onnx.helper, random weights (no torch): chunks of T frames in, each block's cache
# state Concat-ed before them along time, a depthwise Conv over time without padding, the next
# cache the last (kt - 1) dt frames (Slice [-n:]). Not in index.json: a step function with state
# pairs, which the sequence fixtures' tests do not feed (tests/test_conv_cache.py reads it).
CACHE_NAME = "fsmn_cache"
CACHE_BLOCKS = ((4, 1), (3, 2))  # (kt, dt) per memory block: caches of 3 and 4 frames
CACHE_I, CACHE_C, CACHE_O = 6, 8, 3


def fsmn_cache(batch: str | int = "B"):
    """x [B, T, 6] -> Linear -> ReLU -> 2 memory blocks (Linear, Unsqueeze, Transpose to
    [B, C, T, 1], Cast(in_cacheN), Concat along time, depthwise Conv (kt, 1) dilation (dt, 1),
    + residual, Transpose back, Squeeze, Linear, ReLU) -> Linear -> Softmax; in_cacheN
    [B, C, (kt - 1) dt, 1] -> out_cacheN, as the FSMN VAD (opset 14) spells it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(sum(map(ord, CACHE_NAME)))

    def w(*shape: int, scale: float = 0.5) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    inits = {"w_in": w(CACHE_I, CACHE_C), "b_in": w(CACHE_C), "w_out": w(CACHE_C, CACHE_O), "b_out": w(CACHE_O),
             "ax1": np.array([1], np.int64), "ax2": np.array([2], np.int64), "one": np.array([1], np.int64),
             "end": np.array([2**63 - 1], np.int64)}
    nodes = [helper.make_node("MatMul", ["x", "w_in"], ["h0m"]), helper.make_node("Add", ["b_in", "h0m"], ["h0a"]),
             helper.make_node("Relu", ["h0a"], ["h0"])]
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, "T", CACHE_I])]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, "T", CACHE_O])]
    h = "h0"
    for i, (kt, dt) in enumerate(CACHE_BLOCKS):
        n = (kt - 1) * dt
        inits |= {f"wl{i}": w(CACHE_C, CACHE_C), f"wc{i}": w(CACHE_C, 1, kt, 1), f"wa{i}": w(CACHE_C, CACHE_C),
                  f"ba{i}": w(CACHE_C), f"start{i}": np.array([-n], np.int64)}
        b = f"b{i}/"
        nodes += [
            helper.make_node("MatMul", [h, f"wl{i}"], [b + "p"]),
            helper.make_node("Unsqueeze", [b + "p", "ax1"], [b + "u"]),
            helper.make_node("Transpose", [b + "u"], [b + "t"], perm=[0, 3, 2, 1]),
            helper.make_node("Cast", [f"in_cache{i}"], [b + "c"], to=TensorProto.FLOAT),
            helper.make_node("Concat", [b + "c", b + "t"], [b + "cat"], axis=2),
            helper.make_node("Slice", [b + "cat", f"start{i}", "end", "ax2", "one"], [f"out_cache{i}"]),
            helper.make_node("Conv", [b + "cat", f"wc{i}"], [b + "conv"], name=f"{b}conv", kernel_shape=[kt, 1],
                             dilations=[dt, 1], group=CACHE_C, pads=[0, 0, 0, 0], strides=[1, 1]),
            helper.make_node("Add", [b + "t", b + "conv"], [b + "sum"]),
            helper.make_node("Transpose", [b + "sum"], [b + "t1"], perm=[0, 3, 2, 1]),
            helper.make_node("Squeeze", [b + "t1", "ax1"], [b + "sq"]),
            helper.make_node("MatMul", [b + "sq", f"wa{i}"], [b + "am"]),
            helper.make_node("Add", [f"ba{i}", b + "am"], [b + "aa"]),
            helper.make_node("Relu", [b + "aa"], [b + "h"]),
        ]  # fmt: skip
        ins.append(helper.make_tensor_value_info(f"in_cache{i}", TensorProto.FLOAT, [batch, CACHE_C, n, 1]))
        outs.append(helper.make_tensor_value_info(f"out_cache{i}", TensorProto.FLOAT, [batch, CACHE_C, n, 1]))
        h = b + "h"
    nodes += [helper.make_node("MatMul", [h, "w_out"], ["ym"]), helper.make_node("Add", ["b_out", "ym"], ["ya"]),
              helper.make_node("Softmax", ["ya"], ["y"], axis=-1)]
    g = helper.make_graph(nodes, CACHE_NAME, ins, outs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)], producer_name="onnx.helper")
    onnx.checker.check_model(m)
    return m


def export_cache() -> None:
    import onnx

    onnx.save(fsmn_cache(), str(OUT / f"{CACHE_NAME}.onnx"))
    x, _ = toy(np.random.default_rng(sum(map(ord, CACHE_NAME)) + 7), B, T, CACHE_I)
    np.save(OUT / f"{CACHE_NAME}.input.npy", x.transpose(1, 0, 2))  # [T, B, F]
    print(CACHE_NAME, (OUT / f"{CACHE_NAME}.onnx").stat().st_size, "bytes")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    if sys.argv[1:] == [CACHE_NAME]:
        export_cache()
        return
    index = {name: export(name) for name in (sys.argv[1:] or FIXTURES)}
    if not sys.argv[1:]:
        export_cache()
    old = json.loads((OUT / "index.json").read_text()) if (OUT / "index.json").exists() else {}
    (OUT / "index.json").write_text(json.dumps(old | index, indent=1) + "\n")
    for name in index:
        print(name, (OUT / f"{name}.onnx").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
