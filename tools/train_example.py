#!/usr/bin/env python3
"""Train the bundled example model: an LSTM activity classifier on the BasicMotions data set.

BasicMotions (UEA multivariate time series classification archive, Bagnall et al. 2018): 6 channels
of a smartwatch's accelerometer and gyroscope at 10 Hz, 100 steps, 4 activities, 40 training and 40
test cases. It ships as .ts files inside the aeon wheel; this script reads them itself (no aeon).

    pip download --no-deps aeon -d /tmp/aeon
    python tools/train_example.py /tmp/aeon/aeon-*.whl

SOURCE is the wheel, or a directory holding BasicMotions_TRAIN.ts and BasicMotions_TEST.ts (searched
recursively). Writes rnnedge/examples/har_lstm.onnx, har_test.npz and har_train.npz (the training
inputs, which calibrate the integer formats in `rnnedge demo`), and prints the accuracies and a
prefix (streaming) check measured with onnxruntime. Needs torch (a tool-only dependency) and
onnxruntime. Deterministic: the same seed on the same torch build gives the same model.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

DATASET = "BasicMotions"
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "rnnedge" / "examples"
ONNX_NAME = "har_lstm.onnx"
TEST_NAME = "har_test.npz"
TRAIN_NAME = "har_train.npz"  # the training inputs, bundled for calibrating the integer formats
MAX_TEST_BYTES = 100_000
PREFIX_REPORT_STEPS = (5, 10, 25, 50, 75, 100)


class TsFormatError(ValueError):
    """A .ts file does not say what its header promises, or the source holds no BasicMotions."""


@dataclass
class TsData:
    """One .ts file: x float32 [N, T, D] (time-major per case), y int64 [N], class names in header order."""

    x: np.ndarray
    y: np.ndarray
    class_names: list[str]
    comments: list[str]


def parse_ts(text: str, name: str) -> TsData:
    """Parse an equal-length, labelled, multivariate .ts file (the sktime/aeon text format).

    Header lines start with '#' (comment) or '@' (tag) up to '@data'; each data line holds D
    comma-separated series separated by ':', then the class label.
    """
    tags: dict[str, str] = {}
    comments: list[str] = []
    lines = text.splitlines()
    body = None
    for i, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line[1:].strip())
        elif line.lower() == "@data":
            body = i + 1
            break
        elif line.startswith("@"):
            key, _, value = line[1:].partition(" ")
            tags[key.lower()] = value.strip()
        else:
            raise TsFormatError(f"{name}:{i + 1}: expected a '#' or '@' header line, got {line[:40]!r}")
    if body is None:
        raise TsFormatError(f"{name}: no '@data' line")
    for key, want in (("equallength", "true"), ("missing", "false")):
        if tags.get(key, "").lower() != want:
            raise TsFormatError(f"{name}: @{key} is {tags.get(key)!r}; this reader needs {want}")
    label_tag = tags.get("classlabel", "").split()
    if not label_tag or label_tag[0].lower() != "true" or len(label_tag) < 3:
        raise TsFormatError(f"{name}: @classLabel must be 'true' and list the classes, got {label_tag}")
    class_names = label_tag[1:]
    dims = int(tags.get("dimensions", "1"))
    length = int(tags["serieslength"]) if "serieslength" in tags else None

    cases: list[np.ndarray] = []
    labels: list[int] = []
    for i in range(body, len(lines)):
        line = lines[i].strip()
        if not line:
            continue
        *series, label = line.split(":")
        where = f"{name}:{i + 1}"
        if len(series) != dims:
            raise TsFormatError(f"{where}: {len(series)} dimensions, header says {dims}")
        if label not in class_names:
            raise TsFormatError(f"{where}: class {label!r} is not one of {class_names}")
        try:
            rows = [[float(v) for v in part.split(",")] for part in series]
        except ValueError as e:
            raise TsFormatError(f"{where}: {e}") from None
        lengths = {len(r) for r in rows}
        if len(lengths) != 1:
            raise TsFormatError(f"{where}: dimensions of unequal length {sorted(lengths)}")
        case = np.array(rows, dtype=np.float64)
        if length is not None and case.shape[1] != length:
            raise TsFormatError(f"{where}: series of length {case.shape[1]}, header says {length}")
        if not np.isfinite(case).all():
            raise TsFormatError(f"{where}: a value is NaN or infinite")
        cases.append(case.T.astype(np.float32))
        labels.append(class_names.index(label))
    if not cases:
        raise TsFormatError(f"{name}: no cases after '@data'")
    return TsData(np.stack(cases), np.array(labels, dtype=np.int64), class_names, comments)


def read_split(source: Path, split: str) -> TsData:
    """Read BasicMotions_<split>.ts from a wheel (zip) or from a directory tree."""
    filename = f"{DATASET}_{split}.ts"
    if not source.exists():
        raise TsFormatError(f"{source}: no such file or directory")
    if source.is_file():
        if not zipfile.is_zipfile(source):
            raise TsFormatError(f"{source}: neither a directory nor a wheel (zip) file")
        with zipfile.ZipFile(source) as wheel:
            members = [n for n in wheel.namelist() if n.endswith("/" + filename)]
            if not members:
                raise TsFormatError(f"{source}: holds no {filename}")
            with wheel.open(members[0]) as f:
                text = io.TextIOWrapper(f, encoding="ascii").read()
            return parse_ts(text, f"{source}!{members[0]}")
    found = sorted(source.rglob(filename))
    if not found:
        raise TsFormatError(f"{source}: no {filename} under this directory")
    return parse_ts(found[0].read_text(encoding="ascii"), str(found[0]))


@dataclass
class TrainConfig:
    """Training settings; the defaults are the bundled model's (chosen by 5-fold CV on TRAIN)."""

    hidden: int = 32
    epochs: int = 200
    seed: int = 0
    lr: float = 1e-2
    weight_decay: float = 0.01
    noise: float = 0.3  # std of Gaussian noise added to the standardised input, training only
    dropout: float = 0.0  # dropout on the LSTM output before the head, training only
    aux_weight: float = 0.3  # weight of the loss on the earlier steps' outputs
    aux_from: int = 10  # first step that loss covers


def train(train_set: TsData, cfg: TrainConfig, verbose: bool = True):
    """Fit the classifier; returns the torch module (eval mode). Imports torch here: tool-only."""
    import torch
    from torch import nn

    hidden, seed, aux_weight, aux_from = cfg.hidden, cfg.seed, cfg.aux_weight, cfg.aux_from
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    features = train_set.x.shape[2]
    classes = len(train_set.class_names)
    mean = train_set.x.reshape(-1, features).mean(axis=0)
    std = train_set.x.reshape(-1, features).std(axis=0)

    class HarLstm(nn.Module):
        """Linear (fixed per-channel standardisation) -> LSTM -> last step -> Linear -> Softmax."""

        def __init__(self) -> None:
            super().__init__()
            self.norm = nn.Linear(features, features)
            with torch.no_grad():
                self.norm.weight.copy_(torch.diag(torch.from_numpy(1.0 / std)))
                self.norm.bias.copy_(torch.from_numpy(-mean / std))
            self.norm.requires_grad_(False)
            self.lstm = nn.LSTM(features, hidden, batch_first=True)
            self.drop = nn.Dropout(cfg.dropout)
            self.head = nn.Linear(hidden, classes)

        def step_logits(self, x: torch.Tensor) -> torch.Tensor:
            """Logits at every step [B, T, C]: what the model says if the sequence ended there."""
            z = self.norm(x)
            if self.training and cfg.noise > 0:
                z = z + cfg.noise * torch.randn(z.shape, generator=gen)
            y, _ = self.lstm(z)
            return self.head(self.drop(y))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y, _ = self.lstm(self.norm(x))
            return torch.softmax(self.head(y[:, -1, :]), dim=-1)

    gen = torch.Generator().manual_seed(seed)
    model = HarLstm()
    x = torch.from_numpy(train_set.x)
    y = torch.from_numpy(train_set.y)
    steps = x.shape[1]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    batch = 8
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), batch):
            idx = order[start : start + batch]
            logits = model.step_logits(x[idx])
            # The final step carries the label; the earlier steps (from aux_from on) are trained
            # too, more lightly, so that a stream's running output is already a fair guess.
            loss = loss_fn(logits[:, -1], y[idx])
            if aux_weight > 0:
                early = logits[:, aux_from:-1].reshape(-1, classes)
                loss = loss + aux_weight * loss_fn(early, y[idx].repeat_interleave(steps - aux_from - 1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        if verbose and (epoch + 1) % 50 == 0:
            model.eval()
            with torch.no_grad():
                acc = float((model(x).argmax(1) == y).float().mean())
            print(f"  epoch {epoch + 1:4d}: loss {loss.item():.4f}, train accuracy {acc:.3f}")
    return model.eval()


def cross_validate(data: TsData, cfg: TrainConfig, folds: int) -> float:
    """Stratified k-fold accuracy on the training set alone (how the defaults were chosen)."""
    import torch

    fold_of = np.empty(len(data.y), dtype=np.int64)
    for c in range(len(data.class_names)):
        members = np.flatnonzero(data.y == c)
        fold_of[members] = np.arange(len(members)) % folds
    right = 0
    for k in range(folds):
        fit = TsData(data.x[fold_of != k], data.y[fold_of != k], data.class_names, [])
        model = train(fit, cfg, verbose=False)
        with torch.no_grad():
            pred = model(torch.from_numpy(data.x[fold_of == k])).argmax(1).numpy()
        right += int((pred == data.y[fold_of == k]).sum())
    return right / len(data.y)


def export_onnx(model, path: Path, features: int, class_names: list[str], meta: dict[str, str]) -> None:
    """Export with the TorchScript exporter, opset 17, dynamic batch and time; add metadata."""
    import onnx
    import torch

    dummy = torch.zeros(2, 100, features)
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["x"],
        output_names=["probs"],
        dynamic_axes={"x": {0: "batch", 1: "time"}, "probs": {0: "batch"}},
    )
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    proto.doc_string = (
        "Human-activity classifier on BasicMotions (UEA archive): raw 6-channel smartwatch "
        "accelerometer+gyroscope [batch, time, 6] -> class probabilities [batch, 4]."
    )
    entries = {"class_names": ",".join(class_names), **meta}
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(proto, str(path))


def ort_probs(session, x: np.ndarray) -> np.ndarray:
    return session.run(["probs"], {"x": np.ascontiguousarray(x, dtype=np.float32)})[0]


def check_prefixes(session, model, test: TsData) -> None:
    """Feed every prefix x[:, :t] (t = 1..T) to onnxruntime: what a stream returns at step t.

    Checks the outputs are probabilities and equal torch's per-step head outputs from one pass,
    then prints how accuracy and confidence grow with the prefix length.
    """
    import torch

    steps = test.x.shape[1]
    prefix = np.stack([ort_probs(session, test.x[:, :t]) for t in range(1, steps + 1)])  # [T, N, C]
    worst_sum = float(np.abs(prefix.sum(axis=2) - 1).max())
    with torch.no_grad():
        per_step = torch.softmax(model.step_logits(torch.from_numpy(test.x)), -1).numpy()
    diff = float(np.abs(prefix - per_step.transpose(1, 0, 2)).max())
    print(f"prefixes 1..{steps} in onnxruntime: max |sum - 1| {worst_sum:.1e}, "
          f"max |diff| to torch's per-step outputs {diff:.1e}")
    if worst_sum > 1e-5 or diff > 1e-5:
        raise SystemExit("prefix outputs are not the model's per-step probabilities")

    correct = prefix.argmax(2) == test.y[None, :]  # [T, N]
    print("prefix length  accuracy  mean max-prob  mean prob of true class")
    for t in PREFIX_REPORT_STEPS:
        p = prefix[t - 1]
        print(f"{t:13d}  {correct[t - 1].mean():8.3f}  {p.max(1).mean():13.3f}  "
              f"{p[np.arange(len(p)), test.y].mean():23.3f}")
    # The first step from which a case's prediction stays right to the end (T + 1 if never).
    settled = [
        next((t + 1 for t in range(steps) if correct[t:, i].all()), steps + 1) for i in range(len(test.y))
    ]
    print(f"step from which the prediction stays right: median {np.median(settled):.0f}, max {max(settled)}")


def write_test_set(path: Path, test: TsData, ort_accuracy: float | None = None) -> None:
    """x float32 [N, T, 6] raw, y int64 [N], class_names str [C], and onnxruntime's accuracy on
    them (the test set only; the training set's file has no such entry)."""
    extra = {} if ort_accuracy is None else {"onnxruntime_accuracy": np.float64(ort_accuracy)}
    np.savez_compressed(
        path,
        x=test.x.astype(np.float32),
        y=test.y.astype(np.int64),
        class_names=np.array(test.class_names),
        **extra,
    )
    size = path.stat().st_size
    if size > MAX_TEST_BYTES:
        raise SystemExit(f"{path}: {size} bytes, over the {MAX_TEST_BYTES}-byte budget")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="the aeon wheel, or a directory holding the BasicMotions .ts")
    ap.add_argument("--out-dir", type=Path, default=EXAMPLES_DIR)
    for f in fields(TrainConfig):
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    ap.add_argument("--cv", type=int, default=0, metavar="K", help="only print K-fold CV accuracy on TRAIN")
    args = ap.parse_args(argv)
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})

    import onnxruntime as ort
    import torch

    try:
        train_set = read_split(args.source, "TRAIN")
        test_set = read_split(args.source, "TEST")
    except TsFormatError as e:
        ap.error(str(e))
    if train_set.class_names != test_set.class_names or train_set.x.shape[1:] != test_set.x.shape[1:]:
        ap.error(f"TRAIN {train_set.x.shape} {train_set.class_names} and TEST {test_set.x.shape} "
                 f"{test_set.class_names} disagree")
    print(f"{DATASET}: train {train_set.x.shape}, test {test_set.x.shape}, classes {train_set.class_names}")
    if args.cv:
        print(f"{args.cv}-fold CV accuracy on TRAIN, {cfg}: {cross_validate(train_set, cfg, args.cv):.4f}")
        return 0

    model = train(train_set, cfg)
    with torch.no_grad():
        torch_probs = model(torch.from_numpy(test_set.x)).numpy()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out_dir / ONNX_NAME
    test_path = args.out_dir / TEST_NAME
    meta = {
        "dataset": f"{DATASET} (UEA multivariate TSC archive, Bagnall et al. 2018)",
        "input": "raw sensor values [batch, time, 6]: the 6 BasicMotions channels in file order "
        "(3D accelerometer, 3D gyroscope)",
        "training": f"tools/train_example.py, {cfg}, torch {torch.__version__}",
    }
    export_onnx(model, onnx_path, train_set.x.shape[2], train_set.class_names, meta)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    probs = ort_probs(session, test_set.x)
    ort_acc = float((probs.argmax(1) == test_set.y).mean())
    torch_acc = float((torch_probs.argmax(1) == test_set.y).mean())
    write_test_set(test_path, test_set, ort_acc)
    train_path = args.out_dir / TRAIN_NAME
    write_test_set(train_path, train_set)

    print(f"\ntest accuracy: torch {torch_acc:.4f}, onnxruntime {ort_acc:.4f} ({len(test_set.y)} cases); "
          f"max |probs diff| {np.abs(probs - torch_probs).max():.1e}")
    check_prefixes(session, model, test_set)
    for path in (onnx_path, test_path, train_path):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
