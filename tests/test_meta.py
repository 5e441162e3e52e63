"""Blob metadata (rnnedge/blob/meta.py, docs/format.md "Metadata"): hostile JSON behind a valid CRC and
valid layers is refused with a BlobError naming the field, by `read_blob`, `rnnedge.load`,
`Model.from_bytes`, `rnnedge info` and `rnnedge run` (exit 1, one line, no traceback)."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rnnedge
from blob_edit import metadata, with_metadata
from rnnedge.blob import meta as schema, spec
from rnnedge.blob.read import read_blob
from rnnedge.cli import main
from rnnedge.errors import BlobError

DATA = Path(__file__).parent / "data" / "c"
BLOBS = {
    "lstm": (DATA / "lstm_state_inputs.rne").read_bytes(),  # f32, state h0/c0 -> layer 0
    "int8": (DATA / "int" / "q8_lstm_state_inputs.rne").read_bytes(),  # the same in int8
    "yh": (DATA / "lstm_yh.rne").read_bytes(),  # many-to-one: output hn [D, B, H]
    "bidir": (DATA / "lstm_bidirectional.rne").read_bytes(),  # output Y [T, D=2, B, H=5]
    "stack": (DATA / "stack_bilstm_lstm_last_dense_softmax.rne").read_bytes(),  # LSTM 5 (bidir), LSTM 6
}
DEEP = 100_000


def _set(path: str, value: Any) -> Callable[[dict], dict]:
    """A change to the metadata: the value at `path` ("input.axes", "state.0.kind") set, or
    deleted when value is `...`."""

    def change(meta: dict) -> dict:
        meta = copy.deepcopy(meta)
        *parents, last = path.split(".")
        obj: Any = meta
        for p in parents:
            obj = obj[int(p)] if isinstance(obj, list) else obj[p]
        key: Any = int(last) if isinstance(obj, list) else last
        if value is ...:
            del obj[key]
        else:
            obj[key] = value
        return meta

    return change


def _text(text: str) -> Callable[[dict], str]:
    return lambda meta: text


# name -> (blob, change to its metadata (a dict, or the JSON text itself), message)
HOSTILE: dict[str, tuple[str, Callable[[dict], Any], str]] = {
    # missing
    "no input": ("lstm", _set("input", ...), r"meta\.input: expected an object, got nothing"),
    "no output": ("lstm", _set("output", ...), r"meta\.output: expected an object, got nothing"),
    "empty metadata": ("lstm", _text(""), r"meta\.quant|meta\.input: expected an object"),
    "no input axes": ("lstm", _set("input.axes", ...), r"meta\.input\.axes: expected .*got nothing"),
    "no output shape": ("lstm", _set("output.shape", ...), r"meta\.output\.shape: expected a list of 4 sizes"),
    "no qio (int8)": ("int8", _set("qio", ...), r"meta\.qio: expected an object, got nothing"),
    # mistyped
    "input a list": ("lstm", _set("input", [1, 2]), r"meta\.input: expected an object, got \[1, 2\]"),
    "input name a number": ("lstm", _set("input.name", 7), r"meta\.input\.name: expected a string, got 7"),
    "axes a list": ("lstm", _set("input.axes", ["T", "B", "F"]), r"meta\.input\.axes: expected a string"),
    "shape a string": ("lstm", _set("input.shape", "TBF"), r"meta\.input\.shape: expected a list of 3"),
    "dim a float": ("lstm", _set("input.shape", [None, None, 3.0]), r"meta\.input\.shape\[2\]: expected null or a size"),
    "dim a bool": ("lstm", _set("input.shape", [True, None, 3]), r"meta\.input\.shape\[0\]: expected null or a size"),
    "state a dict": ("lstm", _set("state", {"h0": 0}), r"meta\.state: expected a list"),
    "state layer a string": ("lstm", _set("state.0.layer", "0"), r"meta\.state\[0\]\.layer: expected the index of a recurrent layer"),
    "name a list": ("lstm", _set("name", ["x"]), r"meta\.name: expected a string"),
    "quant unknown": ("lstm", _set("quant", "f16"), r"meta\.quant: expected one of f32, int16, int8, got 'f16'"),
    "qio scale a string": ("int8", _set("qio.input_scale", "1"), r"meta\.qio\.input_scale: expected a finite number > 0"),
    "folded not strings": ("lstm", _set("folded", [1]), r"meta\.folded: expected a list of strings"),
    # odd axes
    "axes XX": ("lstm", _set("input.axes", "XX"), r"meta\.input\.axes: expected a string of letters from T,B,F, T and B at most once, the F axes \(one or more\) last where present, got 'XX'"),
    "axes repeated": ("lstm", _set("input.axes", "TTF"), r"meta\.input\.axes: .*got 'TTF'"),
    "output B repeated": ("lstm", _set("output.axes", "TDBB"), r"meta\.output\.axes: .*got 'TDBB'"),
    "several F, one dynamic": ("lstm", _set("input", {"name": "X", "axes": "TBFF", "shape": [None, None, None, 3]}), r"meta\.input\.shape: expected static sizes on the 2 F axes of 'TBFF' multiplying to 3 \(the input value's features\), got \[None, None, None, 3\]"),
    "several F, wrong product": ("lstm", _set("input", {"name": "X", "axes": "TBFF", "shape": [None, None, 2, 3]}), r"meta\.input\.shape: expected static sizes on the 2 F axes of 'TBFF' multiplying to 3"),
    "input F axes apart": ("lstm", _set("input", {"name": "X", "axes": "FTBF", "shape": [1, None, None, 3]}), r"meta\.input\.axes: .*last where present, got 'FTBF'"),
    "input F not last": ("lstm", _set("input.axes", "FTB"), r"meta\.input\.axes: .*got 'FTB'"),
    "input without F": ("lstm", _set("input", {"name": "X", "axes": "BT", "shape": [None, None]}), r"meta\.input\.axes: expected an F axis \(the input value has 3 elements per step\), got 'BT'"),
    "output F and D": ("lstm", _set("output.axes", "TDBF"), r"meta\.output\.axes: .*D and H instead of F, got 'TDBF'"),
    "output D without H": ("lstm", _set("output", {"name": "Y", "axes": "TDB", "shape": [None, 1, None]}), r"meta\.output\.axes: .*got 'TDB'"),
    "output without T": ("lstm", _set("output", {"name": "Y", "axes": "BDH", "shape": [None, 1, 5]}), r"meta\.output\.axes: expected a T axis"),
    "output without B": ("lstm", _set("output", {"name": "Y", "axes": "TDH", "shape": [None, 1, 5]}), r"meta\.output\.axes: expected a B axis"),
    # zero and absurd dimensions
    "zero feature dim": ("lstm", _set("input.shape", [None, None, 0]), r"meta\.input\.shape\[2\]: expected null or a size 1\.\.2147483647 \(axis F\), got 0"),
    "zero directions": ("yh", _set("output.shape", [0, None, 5]), r"meta\.output\.shape\[0\]: expected null or a size"),
    "negative dim": ("lstm", _set("output.shape", [None, 1, -1, 5]), r"meta\.output\.shape\[2\]: expected null or a size"),
    "huge dim": ("lstm", _set("input.shape", [2**64, None, 3]), r"meta\.input\.shape\[0\]: expected null or a size"),
    "shape too short": ("lstm", _set("input.shape", [None, 3]), r"meta\.input\.shape: expected a list of 3 sizes"),
    "dynamic directions": ("bidir", _set("output.shape", [None, None, None, 5]), r"meta\.output\.shape\[1\]: expected a number of directions that divides"),
    # what the layers say
    "input features": ("lstm", _set("input.shape", [None, None, 4]), r"meta\.input\.shape\[2\]: expected 3 \(the input value's features\) or null, got 4"),
    "output features": ("bidir", _set("output.shape", [None, 2, None, 4]), r"meta\.output\.shape\[3\]: expected 5 \(out_features 10 / 2 directions\) or null, got 4"),
    "directions": ("bidir", _set("output.shape", [None, 3, None, 5]), r"meta\.output\.shape\[1\]: expected a number of directions that divides the last layer's out_features 10, got 3"),
    "state on no layer": ("lstm", _set("state.0.layer", 5), r"meta\.state\[0\]\.layer: expected the index of a recurrent layer \(one of \[0\]\), got 5"),
    "state kind": ("lstm", _set("state.0.kind", "x"), r"meta\.state\[0\]\.kind: expected \"h\" or, for an LSTM, \"c\", got 'x'"),
    "state twice": ("lstm", _set("state.1.kind", "h"), r"meta\.state\[1\]: expected one entry per \(layer, kind\)"),
    "state name over two hidden sizes": ("stack", _set("state", [{"name": "h", "layer": 0, "kind": "h"}, {"name": "h", "layer": 1, "kind": "h"}]), r"meta\.state: expected each state name on blocks of one hidden size; 'h' covers \[\('h', 5\), \('h', 6\)\] \(kind, hidden\)"),
    "quant int8 on f32 layers": ("lstm", _set("quant", "int8"), r"meta\.quant: expected f32 \(the layers are f32\), got 'int8'"),
    "quant f32 on int8 layers": ("int8", _set("quant", "f32"), r"meta\.quant: expected int16 or int8 \(the layers are integer\), got 'f32'"),
    "qio zero": ("int8", _set("qio.output_scale", 0), r"meta\.qio\.output_scale: expected a finite number > 0, got 0"),
    "qio infinite": ("int8", _text('{"quant":"int8","qio":{"input_scale":1e999,"output_scale":1},'
                                   '"input":{"name":"X","axes":"TBF","shape":[null,null,3]},'
                                   '"output":{"name":"Y","axes":"TDBH","shape":[null,1,null,5]}}'),
                     r"meta\.qio\.input_scale: expected a finite number > 0, got inf"),
    # JSON itself
    "deep nesting": ("lstm", _text("[" * DEEP + "]" * DEEP), rf"metadata nests arrays and objects {DEEP} deep, more than the 16"),
    "deep nesting in a field": ("lstm", lambda m: json.dumps(m)[:-1] + ',"x":' + "{\"a\":" * DEEP + "1" + "}" * DEEP + "}",
                                rf"metadata nests arrays and objects {DEEP + 1} deep"),
    "unbalanced nesting": ("lstm", _text("[" * DEEP), rf"metadata nests arrays and objects {DEEP} deep"),
    "unterminated escapes": ("lstm", _text('{"name": "' + '\\"' * 500_000), r"metadata is not UTF-8 JSON: Unterminated string"),
    "NaN": ("lstm", _text('{"name": NaN}'), r"metadata is not UTF-8 JSON: NaN is not a JSON number"),
    "huge integer": ("lstm", _text('{"name": ' + "9" * 5000 + "}"), r"metadata is not UTF-8 JSON: .*digits"),
    "duplicate key": ("lstm", lambda m: json.dumps(m)[:-1] + ',"quant":"int8"}', r"metadata is not UTF-8 JSON: key 'quant' appears twice"),
    "too large": ("lstm", lambda m: json.dumps(m | {"pad": " " * schema.MAX_BYTES}), r"metadata is \d+ bytes, more than the 1048576"),
    "not an object": ("lstm", _text("[1]"), r"metadata is a JSON list, not an object"),
}  # fmt: skip


def hostile(name: str) -> bytes:
    base, change, _ = HOSTILE[name]
    meta = change(json.loads(metadata(BLOBS[base])))
    return with_metadata(BLOBS[base], meta)


def test_the_unchanged_blobs_and_every_blob_of_the_tests_pass():
    for data in BLOBS.values():
        assert read_blob(with_metadata(data, metadata(data))).meta == json.loads(metadata(data))
    for path in sorted(DATA.glob("**/*.rne")):
        read_blob(path.read_bytes())


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_metadata_read_blob(name):
    with pytest.raises(BlobError, match=HOSTILE[name][2]) as e:
        read_blob(hostile(name))
    assert e.value.code == spec.E_HEADER


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_metadata_load(name, tmp_path):
    data = hostile(name)
    with pytest.raises(BlobError, match=HOSTILE[name][2]):
        rnnedge.Model.from_bytes(data)
    path = tmp_path / "m.rne"
    path.write_bytes(data)
    with pytest.raises(BlobError, match=f"^{path}: .*" + HOSTILE[name][2]):
        rnnedge.load(path)


@pytest.mark.parametrize("command", ["info", "run"])
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_metadata_cli(name, command, tmp_path, capsys):
    path = tmp_path / "m.rne"
    path.write_bytes(hostile(name))
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 1, 3), np.float32))
    argv = [command, str(path)] + (["--input", str(x)] if command == "run" else [])
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"rnnedge {command}: error: {path}: ") and re.search(HOSTILE[name][2], err), err


def test_a_valid_edit_still_loads_and_runs():
    """Metadata the schema accepts (static sizes that agree, an extra key, a state renamed)."""
    meta = json.loads(metadata(BLOBS["lstm"]))
    meta["input"]["shape"] = [4, 2, 3]
    meta["output"]["shape"] = [4, 1, 2, 5]
    meta["state"][0]["name"] = "hidden"
    meta["comment"] = {"nested": [1, 2, {"deeper": None}]}
    model = rnnedge.Model.from_bytes(with_metadata(BLOBS["lstm"], meta))
    y = model.run(np.zeros((4, 2, 3), np.float32))
    assert y.shape == (4, 1, 2, 5) and set(model.stream(2).state) == {"hidden", "c0"}


def test_several_f_axes_give_a_per_step_shape():
    """Input and output with a per-step shape of several axes (ONNX [B, 1, 512] as 'BFF'): run,
    stream.run and step take and give the user's shape, the same numbers as the one-F layout;
    another shape is refused by name (docs/format.md, `input.axes`)."""
    data = (DATA / "dense.rne").read_bytes()  # TBF [T, B, 6] -> TBF [T, B, 4]
    meta = json.loads(metadata(data))
    meta["input"] = {"name": "X", "axes": "TBFF", "shape": [None, None, 2, 3]}
    meta["output"] = {"name": "Y", "axes": "FTBF", "shape": [2, None, None, 2]}
    plain, model = rnnedge.Model.from_bytes(data), rnnedge.Model.from_bytes(with_metadata(data, meta))
    x = np.random.default_rng(0).standard_normal((5, 3, 6)).astype(np.float32)
    want = plain.run(x).reshape(5, 3, 2, 2).transpose(2, 0, 1, 3)
    np.testing.assert_array_equal(model.run(x.reshape(5, 3, 2, 3)), want)
    np.testing.assert_array_equal(model.stream(3).run(x.reshape(5, 3, 2, 3)), want)
    s = model.stream(3)
    steps = [s.step(x[t].reshape(3, 2, 3)) for t in range(5)]
    assert steps[0].shape == (2, 3, 2)
    np.testing.assert_array_equal(np.stack(steps, axis=1), want)
    with pytest.raises(rnnedge.InputError, match=r"expected shape \[T, B, 2, 3\] .* got \[5, 3, 3, 2\]"):
        model.run(x.reshape(5, 3, 3, 2))
    with pytest.raises(rnnedge.InputError, match=r"expected shape \[B, 2, 3\] .* got \[3, 6\]"):
        s.step(x[0])
    # a step function's 'BFF' (dtln_2's [1, 1, 512]): run stacks the calls on a new T axis
    meta["input"] = {"name": "X", "axes": "BFF", "shape": [None, 1, 6]}
    meta["output"] = {"name": "Y", "axes": "BFF", "shape": [None, 4, 1]}
    step_fn = rnnedge.Model.from_bytes(with_metadata(data, meta))
    np.testing.assert_array_equal(step_fn.run(x.reshape(5, 3, 1, 6)), plain.run(x).reshape(5, 3, 4, 1))
    np.testing.assert_array_equal(step_fn.stream(3).step(x[0].reshape(3, 1, 6)),
                                  plain.run(x[:1])[0].reshape(3, 4, 1))
    from rnnedge.measure import step_latency  # its random inputs in the per-step shape

    assert step_latency(step_fn, steps=3, warmup=1)["steps"] == 3


def test_one_state_name_over_an_integer_lstms_h_and_c():
    """A packed state (PyTorch's or Silero's [2, B, H]: h then c under one name) in an int8 model:
    Stream.state shows int32 (h int16, c int32), and setting it checks each block's range."""
    meta = json.loads(metadata(BLOBS["int8"]))
    meta["state"] = [{"name": "state", "layer": 0, "kind": "h"}, {"name": "state", "layer": 0, "kind": "c"}]
    s = rnnedge.Model.from_bytes(with_metadata(BLOBS["int8"], meta)).stream(2)
    s.step(np.ones((2, 3), np.float32))
    got = s.state["state"]
    assert got.dtype == np.int32 and got.shape == (2, 2, 5) and got.any()
    new = np.arange(20, dtype=np.int32).reshape(2, 2, 5) * np.array([1, 100_000])[:, None, None]
    s.state = {"state": new}
    np.testing.assert_array_equal(s.state["state"], new)
    bad = r"\['state'\]: expected int16 rows 0\.\.0 in \[-32768, 32767\], got values from 0 to 36000"
    with pytest.raises(rnnedge.InputError, match=bad):
        s.state = {"state": new * np.array([4000, 1])[:, None, None]}
    np.testing.assert_array_equal(s.state["state"], new)  # refused: nothing changed


# -- hypothesis: any JSON value at any place of a valid metadata object ---------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.sampled_from([0, 1, 2, 3, 5, 10])
    | st.floats(allow_nan=False) | st.text(max_size=6) | st.sampled_from(["T", "B", "F", "D", "H",
    "TBF", "BTF", "TF", "TDBH", "DBH", "BF", "h", "c", "f32", "int8", "int16"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for k, v in items:
        out += _paths(v, prefix + (k,))
    return out


@st.composite
def edited(draw) -> tuple[str, Any]:
    base = draw(st.sampled_from(sorted(BLOBS)))
    meta = json.loads(metadata(BLOBS[base]))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(meta)[1:]))
        *parents, last = path
        obj = meta
        for p in parents:
            obj = obj[p]
        if draw(st.integers(0, 4)) == 0:
            del obj[last]
        else:
            obj[last] = draw(JSON)
        if draw(st.booleans()):
            meta[draw(st.sampled_from(["input", "output", "state", "qio", "quant", "x"]))] = draw(JSON)
    return base, meta


def test_edited_metadata_is_refused_by_name_or_loads_and_runs():
    """A BlobError naming a meta field, or a model that loads, runs 3 steps and steps once; the
    budget reaches both outcomes."""
    from onnx_mutations import small_input

    seen: Counter = Counter()

    @settings(max_examples=200, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(edited())
    def prop(example):
        base, meta = example
        try:
            model = rnnedge.Model.from_bytes(with_metadata(BLOBS[base], meta))
        except BlobError as e:
            # a field path ("meta.qio.input_scale: expected ...") or, for a value that is well
            # formed but disagrees with the blob's records, the field by name ('metadata "qio"
            # input_scale 1.0 differs from the input value's scale ...')
            assert re.search(r"meta(\.\w+|\[\d+\])*: expected|metadata \"\w+\" \w+ \S+ differs"
                             r"|metadata is not UTF-8 JSON: -?Infinity", str(e)), str(e)  # fmt: skip
            seen["refused"] += 1
            return
        x = small_input(model)
        model.run(x)
        if model.streamable:
            axes = model.input_spec["axes"]
            stream = model.stream(x.shape[axes.index("B")] if "B" in axes else 1)
            stream.step(np.take(x, 0, axis=axes.index("T")))
            stream.state = stream.state
        seen["loaded"] += 1

    prop()
    assert seen["loaded"] >= 5 and seen["refused"] >= 100, dict(seen)  # 12 and 188
