"""The schema of a blob's metadata JSON (docs/format.md, Metadata), checked in one place.

`parse(raw)` turns the metadata bytes into a dict, refusing before `json` recurses what is too
large or too deeply nested; `check(meta, layers)` proves every field the readers use (type,
range) and cross-checks it against the node and value records where the two overlap. Both raise
BlobError (code E_HEADER) whose message names the field, e.g.
"meta.input.axes: expected ..., got 'XX'". After `check`, `meta["input"]`, `meta["output"]`,
`meta.get("state", [])` and, for an integer blob, `meta["qio"]` can be used without a check.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from ..errors import BlobError
from ..ir.layers import QUANTS
from . import spec
from .spec import Blob, NodeRecord

MAX_BYTES = 1 << 20  # metadata larger than this is refused (a writer's is a few hundred bytes)
MAX_DEPTH = 16  # nesting of arrays and objects (the writer's is 3)
MAX_DIM = 2**31 - 1  # static sizes, as the C library counts them
INPUT_AXES = "TBF"  # T, B at most once; F (one or more) last where present (TBF, BTF, BF, BFF, BT...)
OUTPUT_AXES = "TBFDH"  # T, B, D, H at most once; F one or more times, or D and H instead of F,
# or neither (one element per step)

# One pass: a string (to its closing quote, or to the end when unterminated, so that no match is
# retried from inside it: linear time) or one bracket.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.S)


class _Missing:
    def __repr__(self) -> str:
        return "nothing (the key is missing)"


MISSING = _Missing()


def _fail(field: str, expected: str, got: Any) -> NoReturn:
    text = repr(got)
    if len(text) > 80:
        text = text[:77] + "..."
    raise BlobError(f"{field}: expected {expected}, got {text}", code=spec.E_HEADER)


def _depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings (an unterminated string runs to the end)."""
    depth = deepest = 0
    for m in _TOKENS.finditer(text):
        c = m.group()
        if c == "[" or c == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif c == "]" or c == "}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k!r} appears twice in one object")
        out[k] = v
    return out


def parse(raw: bytes) -> dict[str, Any]:
    """The metadata object of `raw` (UTF-8 JSON, at most MAX_BYTES, nesting at most MAX_DEPTH)."""
    if len(raw) > MAX_BYTES:
        raise BlobError(f"metadata is {len(raw)} bytes, more than the {MAX_BYTES} a reader "
                        "accepts", code=spec.E_HEADER)  # fmt: skip
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BlobError(f"metadata is not UTF-8 JSON: {e}", code=spec.E_HEADER) from None
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise BlobError(f"metadata nests arrays and objects {depth} deep, more than the "
                        f"{MAX_DEPTH} a reader accepts", code=spec.E_HEADER)  # fmt: skip
    try:
        meta = json.loads(text or "{}", parse_constant=_no_constant,
                          object_pairs_hook=_unique_keys)  # fmt: skip
    except (ValueError, RecursionError) as e:  # JSONDecodeError, huge ints, duplicate keys
        raise BlobError(f"metadata is not UTF-8 JSON: {e}", code=spec.E_HEADER) from None
    if not isinstance(meta, dict):
        raise BlobError(f"metadata is a JSON {type(meta).__name__}, not an object",
                        code=spec.E_HEADER)  # fmt: skip
    return meta


# -- field checks ----------------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _str(obj: dict[str, Any], key: str, field: str, required: bool = True) -> None:
    if key not in obj:
        if required:
            _fail(f"{field}.{key}", "a string", MISSING)
        return
    if not isinstance(obj[key], str):
        _fail(f"{field}.{key}", "a string", obj[key])


def _object(meta: dict[str, Any], key: str, field: str) -> dict[str, Any]:
    v = meta.get(key)
    if not isinstance(v, dict):
        _fail(field, "an object", MISSING if key not in meta else v)
    return v


def _axes(spec: dict[str, Any], field: str, letters: str, rule: str) -> str:
    """The axes string: letters from `letters`, each at most once except F (several F axes: a
    per-step shape of more than one axis, e.g. ONNX [1, 1, 512] as 'BFF')."""
    axes = spec.get("axes")
    ok = isinstance(axes, str) and set(axes) <= set(letters) and all(
        axes.count(a) == 1 for a in set(axes) - {"F"})  # fmt: skip
    if ok and letters == INPUT_AXES:  # no T: one step per call (a step function); no F: one
        ok = "F" not in axes.rstrip("F")  # element per step (ids), checked by _check_input
    elif ok:  # no F, D nor H: one element per step (Silero's speech_probs [T]), checked by _check_output
        ok = ("D" in axes) == ("H" in axes) and not ("F" in axes and "D" in axes)
    if not ok:
        _fail(f"{field}.axes", f"a string of letters from {','.join(letters)}, {rule}",
              axes if "axes" in spec else MISSING)
    return axes  # type: ignore[return-value]


def _shape(spec: dict[str, Any], field: str, axes: str) -> dict[str, int | None]:
    shape = spec.get("shape")
    expected = f"a list of {len(axes)} sizes (one per axis of {axes!r}), each null or 1..{MAX_DIM}"
    if not isinstance(shape, list) or len(shape) != len(axes):
        _fail(f"{field}.shape", expected,
              shape if "shape" in spec else MISSING)
    for i, d in enumerate(shape):
        if d is not None and not (_is_int(d) and 1 <= d <= MAX_DIM):
            _fail(f"{field}.shape[{i}]", f"null or a size 1..{MAX_DIM} (axis {axes[i]})", d)
    return dict(zip(axes, shape))  # several F: the last one's (_features checks them all)


def _tensor_spec(meta: dict[str, Any], key: str, letters: str, rule: str
                 ) -> tuple[str, dict[str, int | None]]:  # fmt: skip
    field = f"meta.{key}"
    spec = _object(meta, key, field)
    _str(spec, "name", field)
    axes = _axes(spec, field, letters, rule)
    return axes, _shape(spec, field, axes)


def _size(field: str, sizes: dict[str, int | None], letter: str, axes: str, want: int,
          what: str) -> None:  # fmt: skip
    d = sizes.get(letter)
    if d is not None and d != want:
        _fail(f"{field}.shape[{axes.index(letter)}]", f"{want} ({what}) or null", d)


def _features(field: str, spec: dict[str, Any], axes: str, want: int, what: str) -> None:
    """The F axes' sizes: one F null or `want`; several F (a per-step shape) all static,
    multiplying to `want`."""
    fdims = [d for a, d in zip(axes, spec["shape"]) if a == "F"]
    if len(fdims) == 1:
        _size(field, {"F": fdims[0]}, "F", axes, want, what)
    elif len(fdims) > 1 and (None in fdims or math.prod(fdims) != want):
        _fail(f"{field}.shape", f"static sizes on the {len(fdims)} F axes of {axes!r} "
              f"multiplying to {want} ({what})", spec["shape"])  # fmt: skip


def _check_input(meta: dict[str, Any], blob: Blob) -> str:
    axes, _ = _tensor_spec(meta, "input", INPUT_AXES,
                           "T and B at most once, the F axes (one or more) last where present")
    _features("meta.input", meta["input"], axes, blob.in_features, "the input value's features")
    if "F" not in axes and blob.in_features != 1:
        _fail("meta.input.axes", f"an F axis (the input value has {blob.in_features} elements "
              "per step)", axes)
    return axes


def _check_output(meta: dict[str, Any], blob: Blob, in_axes: str) -> None:
    field = "meta.output"
    axes, sizes = _tensor_spec(meta, "output", OUTPUT_AXES,
                               "T, B, D, H at most once: F (one or more), none (one element "
                               "per step), or D and H instead of F")
    out = blob.out_features
    if "F" in axes:
        _features(field, meta["output"], axes, out, "the output value's features")
    elif "D" not in axes:
        if out != 1:
            _fail(f"{field}.axes", f"an F axis (the output value has {out} elements per step)", axes)
    else:
        d = sizes["D"]
        if d is None or out % d:
            _fail(f"{field}.shape[{axes.index('D')}]",
                  f"a number of directions that divides the last layer's out_features {out}", d)
        _size(field, sizes, "H", axes, out // d, f"out_features {out} / {d} directions")
    if "T" not in axes and "T" in in_axes and not blob.many_to_one:
        _fail(f"{field}.axes", "a T axis (the model gives a sequence: its output is not a last-"
              "step value)", axes)
    in_sizes = dict(zip(in_axes, meta["input"]["shape"]))
    if "B" not in axes and "B" in in_axes and in_sizes["B"] != 1:
        _fail(f"{field}.axes", "a B axis (the input has a batch axis not fixed at 1)", axes)


def _check_quant(meta: dict[str, Any], layers: list[NodeRecord]) -> str:
    quant = meta.get("quant", "f32")
    if quant not in QUANTS:
        _fail("meta.quant", f"one of {', '.join(QUANTS)}", quant)
    integer = layers[0].fmt != spec.FMT_F32
    if (quant != "f32") != integer:
        _fail("meta.quant", "int16 or int8 (the layers are integer)" if integer
              else "f32 (the layers are f32)", quant)  # fmt: skip
    if "qio" in meta or integer:
        qio = _object(meta, "qio", "meta.qio")
        for key in ("input_scale", "output_scale"):
            s = qio.get(key)
            if not (isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s)
                    and s > 0):  # fmt: skip
                _fail(f"meta.qio.{key}", "a finite number > 0",
                      s if key in qio else MISSING)
    return quant


def _check_state(meta: dict[str, Any], layers: list[NodeRecord]) -> None:
    state = meta.get("state", [])
    cells = [i for i, l in enumerate(layers) if spec.keeps_state(l)]
    if not isinstance(state, list) or len(state) > 2 * len(cells):
        _fail("meta.state", f"a list of at most {2 * len(cells)} state entries (two per "
              "recurrent layer)", state)  # fmt: skip
    named: dict[tuple[int, str], str] = {}
    for k, s in enumerate(state):
        field = f"meta.state[{k}]"
        if not isinstance(s, dict):
            _fail(field, "an object", s)
        _str(s, "name", field)
        if not s["name"]:
            _fail(f"{field}.name", "a non-empty string", s["name"])
        layer, kind = s.get("layer"), s.get("kind")
        if not (_is_int(layer) and layer in cells):
            _fail(f"{field}.layer", f"the index of a recurrent layer (one of {cells})", layer)
        if kind not in ("h", "c") or (kind == "c" and layers[layer].op != spec.OP_LSTM):
            _fail(f"{field}.kind", '"h" or, for an LSTM, "c"', kind)
        if s.get("output") is not None:
            _str(s, "output", field)
        if (layer, kind) in named:
            _fail(f"{field}", f"one entry per (layer, kind): layer {layer} {kind} is named "
                  f"{named[layer, kind]!r} already", s)  # fmt: skip
        named[layer, kind] = s["name"]
    # Every name (given, or a runtime default h0, c0, h1, ... by recurrent layer) covers blocks
    # of one hidden size, so that Stream.state can stack them (a packed state [2, B, H] covers an
    # LSTM's h and c: in an integer model int16 and int32, shown as int32).
    blocks: dict[str, set[tuple[str, int]]] = {}
    for k, i in enumerate(cells):
        for kind in "hc" if layers[i].op == spec.OP_LSTM else "h":
            name = named.get((i, kind), f"{kind}{k}")
            blocks.setdefault(name, set()).add((kind, layers[i].hidden))
    for name, kinds in blocks.items():
        if len({h for _, h in kinds}) > 1:
            _fail("meta.state", f"each state name on blocks of one hidden size; {name!r} covers "
                  f"{sorted(kinds)} (kind, hidden)", state)  # fmt: skip


def _check_value_specs(meta: dict[str, Any], blob: Blob) -> None:
    """"value_specs": STATE value name -> {"axes": B (at most once) and F letters, "shape": one
    entry per axis, the F sizes (int) multiplying to the value's features, B null or a size}."""
    specs = meta.get("value_specs", {})
    if not isinstance(specs, dict):
        _fail("meta.value_specs", "an object (state value name -> layout)", specs)
    states = {v.name: v for v in blob.values if v.kind == spec.V_STATE}
    for name, s in specs.items():
        field = f"meta.value_specs.{name}"
        if name not in states:
            _fail("meta.value_specs", f"names of state values (one of {sorted(states)})", name)
        if not isinstance(s, dict):
            _fail(field, "an object", s)
        axes, shape = s.get("axes"), s.get("shape")
        if not (isinstance(axes, str) and axes and set(axes) <= set("BF") and axes.count("B") <= 1):
            _fail(f"{field}.axes", "letters B (at most once) and F", axes)
        fdims = [d for a, d in zip(axes, shape or []) if a == "F"]
        if not (isinstance(shape, list) and len(shape) == len(axes) and all(
                _is_int(d) and 1 <= d <= MAX_DIM for d in fdims) and all(
                d is None or (_is_int(d) and 1 <= d <= MAX_DIM) for d in shape)):  # fmt: skip
            _fail(f"{field}.shape", f"a list of {len(axes)} sizes, the F ones integers", shape)
        if math.prod(fdims) != states[name].features:
            _fail(f"{field}.shape", f"F sizes multiplying to the value's {states[name].features} "
                  "elements per step", shape)  # fmt: skip


def check(meta: dict[str, Any], blob: Blob) -> None:
    """Every field of `meta` that a reader uses, and where it overlaps the nodes and values,
    agreement."""
    layers = blob.nodes
    for key in ("name", "producer"):
        _str(meta, key, "meta", required=False)
    folded = meta.get("folded", [])
    if not isinstance(folded, list) or not all(isinstance(f, str) for f in folded):
        _fail("meta.folded", "a list of strings", folded)
    names = meta.get("values", MISSING)
    if names is not MISSING and not (isinstance(names, list) and len(names) == len(blob.values)
                                     and all(isinstance(n, str) for n in names)):  # fmt: skip
        _fail("meta.values", f"a list of {len(blob.values)} value names (strings)", names)
    _check_value_specs(meta, blob)
    _check_quant(meta, layers)
    in_axes = _check_input(meta, blob)
    _check_output(meta, blob, in_axes)
    _check_state(meta, layers)
