"""Make the dataflow-graph fixtures of tests/data/fixtures/graph/ (provenance: tests/data/MANIFEST.md).

    python tests/make_graph_fixtures.py          # needs torch (2.13 CPU) with onnxscript

Small PyTorch models trained briefly (300 Adam steps, seeded) on a toy task (the next value of a
smoothed running sum of the input), exported by torch.onnx.export with dynamo=False (TorchScript)
and dynamo=True, one at opset 11. Each NAME gets NAME.onnx and NAME.input.npy (a [T, B, ...]
sequence in the graph's per-step layout, ids for the token model); index.json lists the
exporter, the opset and what each covers. Tests compute the expected outputs with onnxruntime.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "data" / "fixtures" / "graph"
I, H, O, T, B, V, E = 4, 12, 3, 9, 2, 11, 6
STEPS = 300


def toy(rng: np.random.Generator, n: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, t, I)).astype(np.float32)
    s = np.cumsum(x, axis=1) * 0.3
    y = np.tanh(np.stack([s[..., 0], s[..., 1] - s[..., 2], x[..., 3]], -1)).astype(np.float32)
    return x, y


def train(model, seq_forward, rng: np.random.Generator, ids: bool = False) -> None:
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(STEPS):
        x, y = toy(rng, 16, T)
        if ids:
            xi = np.clip(np.round((x[..., 0] + 2) * 2.5), 0, V - 1).astype(np.int64)
            inp = torch.from_numpy(xi)
        else:
            inp = torch.from_numpy(x)
        loss = ((seq_forward(inp) - torch.from_numpy(y)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def build(name: str):  # -> (module to export, example args, input names, output names, seq input)
    import torch
    from torch import nn

    torch.manual_seed(sum(map(ord, name)))
    rng = np.random.default_rng(sum(map(ord, name)))

    if name in ("step_lstm", "step_lstm_packed"):
        class Seq(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = nn.LSTM(I, H)
                self.head = nn.Linear(H, O)

            def forward(self, x):  # [B, T, I]
                y, _ = self.lstm(x.transpose(0, 1))
                return self.head(y).transpose(0, 1)

        seq = Seq()
        train(seq, seq, rng)

        if name == "step_lstm":
            class Step(nn.Module):
                def __init__(self) -> None:
                    super().__init__()
                    self.seq = seq

                def forward(self, x_t, h, c):  # x_t [B, I], h, c [1, B, H]
                    y, (h2, c2) = self.seq.lstm(x_t.unsqueeze(0), (h, c))
                    return self.seq.head(y[0]), h2, c2

            args = (torch.zeros(B, I), torch.zeros(1, B, H), torch.zeros(1, B, H))
            return Step().eval(), args, ["x_t", "h", "c"], ["y_t", "hn", "cn"]

        class Packed(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.seq = seq

            def forward(self, x_t, state):  # state [2, B, H]: h then c
                y, (h2, c2) = self.seq.lstm(x_t.unsqueeze(0), (state[0:1], state[1:2]))
                return self.seq.head(y[0]), torch.cat([h2, c2], 0)

        args = (torch.zeros(B, I), torch.zeros(2, B, H))
        return Packed().eval(), args, ["x_t", "state"], ["y_t", "next_state"]

    if name == "tokens_lstm2":
        class Tok(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.emb = nn.Embedding(V, E)
                self.lstm = nn.LSTM(E, H, num_layers=2, batch_first=True)
                self.head = nn.Linear(H, O)

            def forward(self, ids):  # int64 [B, T]
                y, _ = self.lstm(self.emb(ids))
                return self.head(y)

        m = Tok()
        train(m, m, rng, ids=True)
        return m.eval(), (torch.zeros(B, T, dtype=torch.int64),), ["ids"], ["y"]

    if name == "glu_gru":
        class Glu(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.front = nn.Linear(I, 2 * H)
                self.gru = nn.GRU(H, H, batch_first=True)
                self.head = nn.Linear(H, O)

            def forward(self, x):  # [B, T, I]
                a, b = self.front(x).chunk(2, dim=-1)
                y, _ = self.gru(a * torch.sigmoid(b))
                return self.head(y)

        m = Glu()
        train(m, m, rng)
        return m.eval(), (torch.zeros(B, T, I),), ["x"], ["y"]

    if name == "residual_lstm":
        class Res(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.inp = nn.Linear(I, H)
                self.f1 = nn.Linear(H, H)
                self.lstm = nn.LSTM(H, H, batch_first=True)
                self.f2 = nn.Linear(H, H)
                self.head = nn.Linear(H, O)

            def forward(self, x):
                z = self.inp(x)
                z = z + torch.relu(self.f1(z))
                y, _ = self.lstm(z)
                y = y + torch.tanh(self.f2(y))
                return self.head(y)

        m = Res()
        train(m, m, rng)
        return m.eval(), (torch.zeros(B, T, I),), ["x"], ["y"]

    if name == "hand_cell":
        class Cell(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.W = nn.Parameter(torch.randn(I, 4 * H) * 0.3)
                self.R = nn.Parameter(torch.randn(H, 4 * H) * 0.3)
                self.b = nn.Parameter(torch.zeros(4 * H))
                self.head = nn.Linear(H, O)

            def step(self, x_t, h, c):
                i, f, g, o = (x_t @ self.W + h @ self.R + self.b).chunk(4, dim=1)
                c2 = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h2 = torch.sigmoid(o) * torch.tanh(c2)
                return self.head(h2), h2, c2

            def forward(self, x):  # training only: [B, T, I]
                h = c = torch.zeros(x.shape[0], H)
                ys = []
                for t in range(x.shape[1]):
                    y, h, c = self.step(x[:, t], h, c)
                    ys.append(y)
                return torch.stack(ys, 1)

        m = Cell()
        train(m, m, rng)

        class Step(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.cell = m

            def forward(self, x_t, h, c):
                return self.cell.step(x_t, h, c)

        args = (torch.zeros(B, I), torch.zeros(B, H), torch.zeros(B, H))
        return Step().eval(), args, ["x_t", "h", "c"], ["y_t", "h_out", "c_out"]
    raise KeyError(name)


# name: (exporter, opset, what it covers)
FIXTURES = {
    "step_lstm": ("torch", 17, "a step function forward(x_t, h, c) -> (y_t, h', c') around nn.LSTM; states paired by name (h/hn, c/cn)"),
    "step_lstm_packed": ("dynamo", 18, "the same with one packed state [2, B, H] (h and c sliced inside, concatenated out); state/next_state"),
    "tokens_lstm2": ("torch", 13, "int64 token ids [B, T] -> Embedding -> 2-layer LSTM -> Linear, opset 13"),
    "glu_gru": ("dynamo", 18, "a GLU-gated front end (Linear -> chunk -> a * sigmoid(b)) -> GRU -> Linear"),
    "residual_lstm": ("torch", 11, "residual Linear blocks (x + f(x)) around an LSTM, opset 11"),
    "hand_cell": ("torch", 17, "an LSTM cell written as MatMul/Add/Split/Sigmoid/Tanh/Mul; a step function with h, c in and out, no recurrent op"),
}  # fmt: skip


def export(name: str) -> dict:
    import torch

    exporter, opset, covers = FIXTURES[name]
    module, args, ins, outs = build(name)
    path = OUT / f"{name}.onnx"
    step = outs[0] == "y_t"
    if step:
        three = ("h", "c", "hn", "cn", "state", "next_state") if name != "hand_cell" else ()
        dyn = {n: {(1 if n in three else 0): "batch"} for n in ins + outs}
    else:
        dyn = {n: {0: "batch", 1: "seq"} for n in ins + outs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torch":
            torch.onnx.export(module, args, str(path), dynamo=False, input_names=ins, output_names=outs,
                              dynamic_axes=dyn, opset_version=opset)
        else:
            batch = torch.export.Dim("batch")
            seqd = torch.export.Dim("seq")
            shapes = tuple({k: (batch if v == "batch" else seqd) for k, v in dyn[n].items()} for n in ins)
            program = torch.onnx.export(module, args, dynamo=True, input_names=ins, output_names=outs,
                                        dynamic_shapes=shapes, opset_version=opset)
            program.save(str(path), external_data=False)
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
            from make_fixtures import strip_metadata

            strip_metadata(path)
    rng = np.random.default_rng(sum(map(ord, name)) + 7)
    x, _ = toy(rng, B, T)
    x = x.transpose(1, 0, 2)  # [T, B, I]
    if name == "tokens_lstm2":
        x = np.clip(np.round((x[..., 0] + 2) * 2.5), 0, V - 1).astype(np.int64)  # [T, B]
    np.save(OUT / f"{name}.input.npy", x)
    return {"exporter": {"torch": "torch.onnx.export(dynamo=False)", "dynamo": "torch.onnx.export(dynamo=True)"}[exporter],
            "opset": opset, "step_function": step, "covers": covers}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    index = {name: export(name) for name in (sys.argv[1:] or FIXTURES)}
    old = json.loads((OUT / "index.json").read_text()) if (OUT / "index.json").exists() else {}
    (OUT / "index.json").write_text(json.dumps(old | index, indent=1) + "\n")
    for name in index:
        print(name, (OUT / f"{name}.onnx").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
