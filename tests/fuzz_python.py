#!/usr/bin/env python3
"""Fuzz the Python side of rnnedge with atheris (libFuzzer, coverage-guided over rnnedge's
Python code). One target per run:

    python3 tests/fuzz_python.py TARGET [libFuzzer flags] [CORPUS_DIR ...]
    python3 tests/fuzz_python.py TARGET --seeds DIR      # write TARGET's seed corpus into DIR
    python3 tests/fuzz_python.py TARGET crash-FILE       # replay one input

Targets (tools/fuzz_python.sh runs them all, seeded, for a given total time):
  meta     the input is a blob's metadata JSON (first byte: which seed blob of tests/data gets
           it, the CRC re-signed): `read_blob`, `describe`, `to_network`, `Model.from_bytes`,
           and when it loads, a short `run`, one `step` and the stream state read and written
  blob     the input is a whole blob (the CRC re-signed when the header's file_size fits):
           `read_blob` (with and without the CRC check), `describe`, `Model.from_bytes`, a run
  convert  the input is an ONNX file (seeds: tests/data/fixtures/*.onnx): `rnnedge.convert`
  onnx     the input drives the hypothesis strategies of tests/onnx_mutations.py (seed models
           mutated as ModelProtos, and the symbolic shape arithmetic op by op) through
           `fuzz_one_input`: `rnnedge.convert` on structurally mutated models

The property everywhere: an rnnedge error (`RnnedgeError`, with a message) or a result that
works; for conversions also the output blob untouched on failure and no temporary file left
(tests/onnx_mutations.py). Any other exception is a finding: atheris prints it, saves the input
as crash-* under -artifact_prefix and exits non-zero; a crash in C code or a hang (-timeout) the
same way.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from pathlib import Path

import atheris
import numpy as np

ROOT = Path(__file__).resolve().parent.parent  # beside the test helpers it imports (tests/)
TARGETS = ("meta", "blob", "convert", "onnx")

SEEDING = "--seeds" in sys.argv  # writing seeds needs no coverage instrumentation (slow to add)
with contextlib.nullcontext() if SEEDING else atheris.instrument_imports(
    include=["rnnedge", "onnx_mutations", "blob_edit"]
):
    import blob_edit
    import onnx_mutations
    import rnnedge
    import rnnedge.converter.graph  # imported lazily by rnnedge.convert: instrumented here
    import rnnedge.quant.policy  # imported lazily for an integer format: instrumented here
    from rnnedge.blob.read import read_blob, to_network
    from rnnedge.blob.show import describe
    from rnnedge.errors import BlobError, InputError, NotStreamableError, RnnedgeError

warnings.simplefilter("ignore")  # calibration defaults, precision notes
SELFTEST = os.environ.get("RNNEDGE_FUZZ_SELFTEST") == "1"  # every input is a finding (tests)


def seed_blobs() -> list[bytes]:
    paths = sorted((ROOT / "tests" / "data" / "c").glob("**/*.rne"))
    paths += sorted((ROOT / "rnnedge" / "examples").glob("*.rne"))
    return [p.read_bytes() for p in paths]


def seed_onnx() -> list[bytes]:
    return [p.read_bytes() for p in sorted((ROOT / "tests" / "data" / "fixtures").glob("*.onnx"))]


# -- the property for a loadable model -----------------------------------------------------------
def exercise(model: rnnedge.Model) -> None:
    """A short run in the model's input layout; when streamable one step, and the state read and
    written back. Refusals of the input are InputError; nothing else may be raised."""
    x = onnx_mutations.small_input(model)
    model.run(x)
    repr(model)
    if not model.streamable:
        return
    axes = model.input_spec["axes"]
    batch = x.shape[axes.index("B")] if "B" in axes else 1
    try:
        s = model.stream(batch=batch)
    except (InputError, NotStreamableError):
        return
    s.step(np.take(x, 0, axis=axes.index("T")))
    s.state = s.state
    s.reset()


def check_blob(data: bytes) -> None:
    try:
        blob = read_blob(data, verify_crc=False)  # as `rnnedge info` reads it
    except BlobError as e:
        assert str(e), "BlobError without a message"
        return
    describe(blob)
    to_network(blob)
    try:
        model = rnnedge.Model.from_bytes(data)
    except BlobError as e:
        assert str(e), "BlobError without a message"
        return
    exercise(model)


# -- targets -------------------------------------------------------------------------------------
class Meta:
    def __init__(self) -> None:
        self.blobs = seed_blobs()

    def seeds(self) -> list[bytes]:
        return [bytes([i]) + blob_edit.metadata(b) for i, b in enumerate(self.blobs[:256])]

    def dictionary(self) -> list[str]:
        """libFuzzer -dict tokens: the schema's keys and values (rnnedge/blob/meta.py)."""
        words = ["name", "producer", "quant", "input", "output", "axes", "shape", "state",
                 "layer", "kind", "qio", "input_scale", "output_scale", "folded", "f32", "int16",
                 "int8", "h", "c", "T", "B", "F", "D", "H", "TBF", "BTF", "TF", "BF", "TDBH",
                 "DBH", "x", "y"]  # fmt: skip
        tokens = [f'"{w}"' for w in words] + ["null", "true", "false", "[]", "{}", "0", "-1",
                                              "1e999", "NaN", "2147483648", '"":']  # fmt: skip
        return tokens

    def __call__(self, data: bytes) -> None:
        if not data:
            return
        check_blob(blob_edit.with_metadata(self.blobs[data[0] % len(self.blobs)], data[1:]))


class Blob:
    def seeds(self) -> list[bytes]:
        return seed_blobs()

    def __call__(self, data: bytes) -> None:
        if len(data) >= 64:
            size = int.from_bytes(data[20:24], "little")
            if 64 <= size <= len(data):
                data = blob_edit.refresh_crc(data[:size])
        check_blob(data)


class Convert:
    def __init__(self) -> None:
        self.m = onnx_mutations
        self.workdir = Path(tempfile.mkdtemp(prefix="rnnedge-fuzz-"))

    def seeds(self) -> list[bytes]:
        return seed_onnx()

    def __call__(self, data: bytes) -> None:
        quant = self.m.QUANTS[len(data) % len(self.m.QUANTS)]
        example = self.m.Example("input", (), data, quant)
        outcome = self.m.check(example, self.workdir)
        assert outcome.kind != "bug", outcome.report(example)


class Onnx(Convert):
    def __init__(self) -> None:
        super().__init__()
        from hypothesis import HealthCheck, given, settings
        from hypothesis import strategies as st

        @settings(database=None, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.one_of(self.m.examples(), self.m.fold_examples()))
        def prop(example) -> None:
            outcome = self.m.check(example, self.workdir)
            assert outcome.kind != "bug", outcome.report(example)

        self.one = prop.hypothesis.fuzz_one_input

    def seeds(self) -> list[bytes]:
        # hypothesis reads the input as its choices: 512 random bytes each (fewer overrun the
        # strategies' draws), the first of them picking each seed model in turn
        rng = np.random.default_rng(0)
        return [bytes([0, i % 256]) + rng.bytes(510) for i in range(len(self.m.seed_models()))]

    def __call__(self, data: bytes) -> None:
        self.one(data)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer flags] [corpus dirs]")
    target = {"meta": Meta, "blob": Blob, "convert": Convert, "onnx": Onnx}[sys.argv[1]]()
    args = sys.argv[2:]
    if args[:1] == ["--seeds"]:
        out = Path(args[1])
        out.mkdir(parents=True, exist_ok=True)
        for i, s in enumerate(target.seeds()):
            (out / f"seed-{i:04d}").write_bytes(s)
        if hasattr(target, "dictionary"):  # next to the seeds: DIR.dict
            lines = ['"' + t.replace("\\", "\\\\").replace('"', '\\"') + '"'
                     for t in target.dictionary()]  # fmt: skip
            Path(str(out) + ".dict").write_text("\n".join(lines) + "\n")
        return

    def one_input(data: bytes) -> None:
        if SELFTEST:
            raise AssertionError("self-test: a planted finding")
        try:
            target(data)
        except RnnedgeError as e:  # refused with a message: the property holds
            assert str(e).strip(), f"{type(e).__name__} without a message"

    atheris.Setup([sys.argv[0], *args], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
