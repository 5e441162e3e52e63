"""`rnnedge info`: the readable table of a blob (header, model, nodes, values, tensors). A blob read
without the compiled extension is not judged (rnnedge/blob/check.py): the table says so, and
shows unknown codes as numbers."""

from __future__ import annotations

from typing import Any

from ..ir.layers import ACT_USES_ALPHA, ACT_USES_BETA, Act
from ..ir.graph import BINARY_KINDS
from .check import NO_JUDGE, available
from .spec import (
    BIN_ADD, DTYPES, FMT_NAMES, LF_BIDIR, LF_CLIP, LF_REVERSE, NONE, OP_BINARY, OP_CELLS,
    OP_CONCAT, OP_LAYERNORM, OP_REDUCE, OP_SLICE, OP_TAKE_LAST, OP_TRANSPOSE, Blob, NodeRecord,
    flag_text,
)  # fmt: skip

_BINARY = BINARY_KINDS
_REDUCE = ("Sum", "Mean", "Max", "Min")


def _act_text(act: Act) -> str:
    params = []
    if act.kind in ACT_USES_ALPHA:
        params.append(f"{act.alpha:g}")
    if act.kind in ACT_USES_BETA:
        params.append(f"{act.beta:g}")
    return act.kind + (f"({','.join(params)})" if params else "")


def _layer_detail(rec: NodeRecord) -> str:
    p = rec.param
    if rec.op == OP_TAKE_LAST:
        return f"split {p[0]}"
    if rec.op == OP_SLICE:
        return f"axis {p[0]} [{p[1]}:{p[2]}" + (f":{p[3]})" if p[3] != 1 else ")")
    if rec.op == OP_BINARY:
        return _BINARY[p[0] - BIN_ADD] if 0 <= p[0] < len(_BINARY) else f"kind {p[0]}"
    if rec.op == OP_CONCAT:
        return f"axis {p[0]}"
    if rec.op == OP_TRANSPOSE:
        return f"perm {list(p[:4])}"
    if rec.op == OP_REDUCE:
        kind = _REDUCE[p[0]] if 0 <= p[0] < len(_REDUCE) else f"kind {p[0]}"
        return f"{kind} axes {[a for a in range(4) if p[1] >> a & 1]}"
    if rec.op not in OP_CELLS and rec.op != 2:  # ACT (2) and the cells have activations
        return ""
    if rec.op == OP_LAYERNORM:
        return f"eps {rec.alpha[0][0]:g}"
    try:
        acts = rec.acts
    except KeyError:  # an unknown activation code: only a blob nobody judged has one
        return "activation codes " + " | ".join(",".join(map(str, a)) for a in rec.act)
    parts = [" ".join(_act_text(a) for a in acts) for acts in rec.acts]
    text = " | ".join(parts)
    if rec.flags & LF_CLIP:
        text += f"  clip {rec.clip:g}"
    return text


def _shape_text(s: Any) -> str:
    if not isinstance(s, list):
        return "?"
    return "[" + ", ".join("?" if d is None else str(d) for d in s) + "]"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  " + "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]


def describe(blob: Blob) -> str:
    """A readable summary: header, model, layers, tensors, sizes, number format, checksum."""
    h, meta = blob.header, blob.meta
    weights = sum(t.nbytes for t in blob.tensors)
    fmts = sorted({FMT_NAMES.get(l.fmt, str(l.fmt)) for l in blob.layers})
    lines = [
        f"rnnedge blob v{h.version}: {h.file_size} bytes ({weights} of tensor data, "
        f"{h.file_size - weights} of header, tables, metadata and padding), "
        f"alignment {h.alignment}",
        f"checksum 0x{blob.crc:08x}: {'ok' if blob.crc_ok else 'MISMATCH (the blob is corrupt)'}",
        *([] if available() else [NO_JUDGE]),
        f"model {meta.get('name', '?')!s}: number format {meta.get('quant', '?')} "
        f"(nodes: {', '.join(fmts)})"
        + (f", from {meta['producer']}" if meta.get("producer") else ""),
    ]
    qio = meta.get("qio")
    if isinstance(qio, dict):
        lines.append(f"int16 input at scale {qio.get('input_scale')}, int16 output at scale "
                     f"{qio.get('output_scale')} (metadata qio)")  # fmt: skip
    for key in ("input", "output"):
        s = meta.get(key)
        if isinstance(s, dict):
            lines.append(f"{key} {s.get('name', '?')}: axes {s.get('axes', '?')} shape "
                         f"{_shape_text(s.get('shape'))}")  # fmt: skip
    lines.append(
        f"{blob.in_features} features in, {blob.out_features} out; "
        f"{'streamable' if blob.streamable else 'not streamable (reads backwards)'}"
        f"{', many-to-one' if blob.many_to_one else ''}"
    )
    for s in meta.get("state", []):
        lines.append(f"state {s.get('name')}: layer {s.get('layer')} {s.get('kind')}"
                     + (f" -> {s['output']}" if s.get("output") else ""))  # fmt: skip
    ids = lambda xs: ",".join(str(x) for x in xs if x != NONE) or "-"  # noqa: E731
    rows = [["#", "op", "in", "out", "values", "hidden", "dir", "fmt", "flags",
             "activations / params"]]  # fmt: skip
    for l in blob.nodes:
        direction = ("bidir" if l.flags & LF_BIDIR else "reverse" if l.flags & LF_REVERSE
                     else "forward") if l.op in OP_CELLS else ""  # fmt: skip
        rows.append([
            str(l.index), l.op_name, str(l.in_features), str(l.out_features),
            f"{ids(l.inputs)} -> {ids(l.outputs)}", str(l.hidden) if l.hidden else "",
            direction, FMT_NAMES.get(l.fmt, str(l.fmt)),
            flag_text(l.flags & ~(LF_REVERSE | LF_BIDIR | LF_CLIP)), _layer_detail(l),
        ])  # fmt: skip
    lines += [f"nodes ({len(blob.nodes)}):", *_table(rows)]
    rows = [["#", "name", "kind", "dtype", "shape", "last", "offset", "update", "init"]]
    for v in blob.values:
        rows.append([
            str(v.index), v.name, v.kind_name, DTYPES[v.dtype][0] if v.dtype in DTYPES else
            str(v.dtype), "x".join(map(str, v.shape)), "last" if v.last else "",
            str(v.offset), "" if v.update < 0 else str(v.update), "" if v.init < 0 else str(v.init),
        ])  # fmt: skip
    lines += [f"values ({len(blob.values)}, arena {h.arena_row} bytes per row):", *_table(rows)]
    if blob.tensors:
        rows = [["#", "name", "dtype", "shape", "bytes", "offset"]]
        for t in blob.tensors:
            rows.append([str(t.index), t.name, t.dtype_name, "x".join(map(str, t.shape)),
                         str(t.nbytes), str(t.offset)])  # fmt: skip
        lines += [f"tensors ({len(blob.tensors)}, {weights} bytes):", *_table(rows)]
    return "\n".join(lines)
