"""`rnnedge export-c`: a .rne blob as a C header for firmware.

    rnnedge export-c MODEL.rne -o model_data.h [--symbol NAME] [--section .rodata.model]

The header holds the blob as a `const unsigned char NAME[]` aligned to the blob's own alignment
(so `rne_model_load` uses it in place, straight from flash), and #defines for its size, CRC-32,
feature counts and the state and scratch bytes one stream needs (computed by the C library
itself, `rne_state_size(&model, 1)` and `rne_scratch_size(&model, 1, 1)`), so that firmware
allocates exactly that, statically. docs/embedded.md shows the firmware side.

The header also names the library build configuration the model needs (`build_config`): the
`-DRNE_NO_*` flags that leave out of csrc/ every op family and number format the model does not
use (docs/c-api.md, "Build configuration"), as a comment and as PREFIX_RNE_CFLAGS; the command
prints them. A library built with them links only what this model runs, and refuses at load
(RNE_ELAYER, field op or fmt) a model that needs more.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .blob.spec import (
    ACT_ABS,
    ACT_POW,
    FMT_F32,
    FMT_S16,
    FMT_S8,
    LF_INNER,
    OP_ACT,
    OP_BINARY,
    OP_CONV,
    OP_CONV_T,
    OP_DENSE,
    OP_GRU,
    OP_LAYERNORM,
    OP_LSTM,
    OP_REDUCE,
    OP_RNN,
    OP_SLICE,
    NONE,
    Blob,
    NodeRecord,
)
from .errors import InputError, RnnedgeError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SECTION = re.compile(r"[A-Za-z0-9_.$]+\Z")
# C99 and C11 keywords: not usable as the array's name
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if "
    "inline int long register restrict return short signed sizeof static struct switch typedef "
    "union unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic "
    "_Generic _Noreturn _Static_assert _Thread_local".split()
)
_HEX = [f"0x{i:02x}," for i in range(256)]
_PER_LINE = 16


# the build configuration macros (csrc/rne_internal.h), each with what a model needs it for
_NO_FMT = {"RNE_NO_F32": FMT_F32, "RNE_NO_S16": FMT_S16, "RNE_NO_S8": FMT_S8}
_NO_OP = {
    "RNE_NO_DENSE": OP_DENSE,
    "RNE_NO_ACT": OP_ACT,
    "RNE_NO_LSTM": OP_LSTM,
    "RNE_NO_GRU": OP_GRU,
    "RNE_NO_RNN": OP_RNN,
    "RNE_NO_LAYERNORM": OP_LAYERNORM,
}


def _graph_op(blob: Blob, node: NodeRecord) -> bool:
    """A node that needs the graph ops of csrc/ops.h (blob.c's rne__is_graph_op, and the ACT
    kinds ABS .. POW, which come with them)."""
    if node.op == OP_SLICE:
        x = blob.values[node.inputs[0]]
        return node.param[0] != len(x.shape) - 1 or node.param[3] != 1
    if node.op == OP_ACT:
        return ACT_ABS <= node.act[0][0] <= ACT_POW
    return OP_BINARY <= node.op <= OP_REDUCE


def build_config(blob: Blob, fault_names: bool = True) -> list[str]:
    """The -D flags of the smallest library that runs `blob`: every RNE_NO_* macro whose family
    no node uses (csrc/rne_internal.h). fault_names False adds RNE_NO_FAULT_NAMES (rne_strerror
    and the fault names become one short string; the codes stay), which no model needs."""
    fmts = {n.fmt for n in blob.nodes}
    ops = {n.op for n in blob.nodes}
    flags = [m for m, f in _NO_FMT.items() if f not in fmts]
    flags += [m for m, o in _NO_OP.items() if o not in ops]
    if not any(_graph_op(blob, n) for n in blob.nodes):
        flags.append("RNE_NO_GRAPH_OPS")
    if not ops & {OP_CONV, OP_CONV_T}:
        flags.append("RNE_NO_CONV")
    if not any(n.op in (OP_LSTM, OP_GRU, OP_RNN) and
               any(v != NONE for v in n.inputs[1:3] + n.outputs[1:3]) for n in blob.nodes):
        flags.append("RNE_NO_STATE_IO")  # no recurrent node's h_init / c_init / Y_h / Y_c
    if not any(n.op in (OP_LSTM, OP_GRU, OP_RNN) and n.flags & LF_INNER for n in blob.nodes):
        flags.append("RNE_NO_INNER")  # no recurrence over a per-step axis
    if not fault_names:
        flags.append("RNE_NO_FAULT_NAMES")
    return ["-D" + m for m in flags]


@dataclass(frozen=True)
class Exported:
    """What `export_c` wrote: the names and figures in the header."""

    path: str
    symbol: str  # the array
    prefix: str  # of the #defines: PREFIX_SIZE, PREFIX_STATE_BYTES, ...
    size: int
    alignment: int
    crc32: int
    in_features: int
    out_features: int
    state_bytes: int
    scratch_bytes: int
    streamable: bool
    quant: str
    cflags: tuple[str, ...] = ()  # build_config: the library's -D flags for this model


def default_symbol(blob_path: str | os.PathLike) -> str:
    """A C identifier from the file name: `models/har-lstm.rne` -> `har_lstm`."""
    stem = Path(blob_path).name.split(".")[0]
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem) or "model"
    if (
        name[0].isdigit()
        or name in _C_KEYWORDS
        or name.startswith("__")
        or re.match(r"_[A-Z]", name)
    ):
        name = "model_" + name
    return name


def _check_symbol(symbol: str) -> str:
    if not _IDENT.match(symbol) or symbol in _C_KEYWORDS:
        raise InputError(
            f"--symbol {symbol!r} is not a C identifier (letters, digits and _, not starting with a "
            "digit, not a C keyword)"
        )
    if symbol.startswith("__") or re.match(r"_[A-Z]", symbol):
        raise InputError(
            f"--symbol {symbol!r}: names starting with __ or _ and a capital are reserved in C"
        )
    return symbol


def _check_section(section: str | None) -> str | None:
    if section is not None and not _SECTION.match(section):
        raise InputError(
            f"--section {section!r}: a section name here is letters, digits, '.', '_' and '$' only"
        )
    return section


def comment_text(text: str) -> str:
    """Text safe inside a C block comment of an ASCII header: escaped for a terminal
    (cli.printable), non-ASCII characters as \\u escapes, and '*/' and '/*' broken up."""
    from .console import printable

    safe = printable(text).encode("ascii", "backslashreplace").decode("ascii")
    while "*/" in safe or "/*" in safe:
        safe = safe.replace("*/", "* /").replace("/*", "/ *")
    return safe


def _comment(text: str) -> list[str]:
    """Lines of a C block comment, through comment_text."""
    return [f" * {line}".rstrip() for line in comment_text(text).splitlines()]


def _f32(v: float) -> str:
    return f"{v:.9g}f"


def _define(name: str, value: str, comment: str) -> str:
    return (
        f"#define {name} {value}".ljust(max(48, len(name) + len(value) + 10)) + f"/* {comment} */"
    )


def header_text(data: bytes, info: Exported, source: str, description: str, section: str | None,
                qio: tuple[float, float] | None) -> str:  # fmt: skip
    """The whole header for `data` (the blob's bytes)."""
    p, sym = info.prefix, info.symbol
    attrs = [f"aligned({info.alignment})"] + ([f'section("{section}")'] if section else [])
    buf_type = "int16_t" if info.quant != "f32" else "float"
    lines = [
        "/*",
        *_comment(f"{Path(info.path).name} - generated by `rnnedge export-c` from {Path(source).name}: do not edit."),
        " *",
        *_comment(description),
        " *",
        " * The blob is used in place (no copy): rne_model_load("
        + sym
        + ", "
        + p
        + "_SIZE, &model).",
        " * Memory for one stream (batch 1), allocated statically:",
        f" *   static unsigned char state[{p}_STATE_BYTES] __attribute__((aligned(16)));",
        f" *   static unsigned char scratch[{p}_SCRATCH_BYTES] __attribute__((aligned(16)));",
        " *   rne_stream_init(&stream, &model, 1, state, sizeof state, scratch, sizeof scratch);",
        f" *   rne_step(&stream, x, y);    x: {buf_type}[{p}_IN_FEATURES], y: {buf_type}[{p}_OUT_FEATURES]",
        " * The smallest library that runs this model (docs/c-api.md, \"Build configuration\"):",
        *_comment("  " + " ".join(info.cflags) if info.cflags else "  (every family: no flags)"),
        f" * ({p}_RNE_CFLAGS below): the library's sources built with them link only what this model",
        " * runs, and refuse at load a model that needs more (RNE_ELAYER, field op or fmt).",
        " * Include this header in one .c file, which then defines the array; other files that need",
        f" * only the #defines and the declaration define {p}_DECLARE_ONLY before including it.",
        " */",
        f"#ifndef {p}_DATA_H",
        f"#define {p}_DATA_H",
        "",
        _define(f"{p}_SIZE", f"{info.size}u", "bytes of the blob"),
        _define(f"{p}_ALIGN", f"{info.alignment}u", "the array must start at a multiple of this"),
        _define(
            f"{p}_CRC32", f"0x{info.crc32:08x}u", "CRC-32 (zlib's) of all bytes but the last 4"
        ),
        _define(f"{p}_IN_FEATURES", f"{info.in_features}u", "x of one step"),
        _define(f"{p}_OUT_FEATURES", f"{info.out_features}u", "y of one step"),
        _define(f"{p}_STATE_BYTES", f"{info.state_bytes}u", "rne_state_size(&model, 1)"),
        _define(
            f"{p}_SCRATCH_BYTES",
            f"{info.scratch_bytes}u",
            "rne_scratch_size(&model, 1, 1): rne_step's",
        ),
        _define(
            f"{p}_STREAMABLE",
            str(int(info.streamable)),
            "0: a layer reads backwards, so rne_run over whole sequences only",
        ),
        _define(
            f"{p}_INTEGER",
            str(int(qio is not None)),
            f"{info.quant}: " + ("int16 x and y at the scales below" if qio else "float x and y"),
        ),
    ]
    lines.append(
        _define(
            f"{p}_RNE_CFLAGS",
            '"' + " ".join(info.cflags) + '"',
            "the library's -D flags for this model",
        )
    )
    if qio is not None:
        lines += [
            _define(
                f"{p}_INPUT_SCALE", _f32(qio[0]), "x = clamp(floor(value / scale + 0.5), int16)"
            ),
            _define(f"{p}_OUTPUT_SCALE", _f32(qio[1]), "value = y * scale"),
        ]
    lines += [
        "",
        "#if defined(__GNUC__) || defined(__clang__)",
        f"#define {p}_ATTRIBUTES __attribute__(({', '.join(attrs)}))",
        "#else",
        f"/* Other compilers: give the array {p}_ALIGN-byte alignment (and a section) in their own",
        "   syntax, e.g. IAR `#pragma data_alignment=N` or MSVC `__declspec(align(N))` before it; the",
        "   loader refuses a misaligned blob with RNE_EALIGN. */",
        f"#define {p}_ATTRIBUTES",
        "#endif",
        "",
        f"extern const unsigned char {sym}[{p}_SIZE];",
        "",
        f"#ifndef {p}_DECLARE_ONLY",
        f"const unsigned char {sym}[{p}_SIZE] {p}_ATTRIBUTES = {{",
    ]
    body = [
        "".join(_HEX[b] for b in data[i : i + _PER_LINE]) for i in range(0, len(data), _PER_LINE)
    ]
    lines += body
    lines += ["};", f"#endif /* {p}_DECLARE_ONLY */", "", f"#endif /* {p}_DATA_H */", ""]
    return "\n".join(lines)


def export_c(
    blob_path: str | os.PathLike,
    out_path: str | os.PathLike,
    symbol: str | None = None,
    section: str | None = None,
    fault_names: bool = True,
) -> Exported:
    """Write the blob at `blob_path` as a C header at `out_path` (atomically).

    symbol: the array's name (default: from the file name); its upper-case form prefixes the
    #defines. section: a linker section for the array, e.g. ".rodata.model" (GCC/clang syntax).
    fault_names False: the build configuration also leaves out the status and fault names.
    The blob is loaded and validated by the C library first (BlobError if it is corrupt), which
    also gives the state and scratch sizes. Returns the figures written.
    """
    from .model import load

    symbol = _check_symbol(symbol if symbol is not None else default_symbol(blob_path))
    section = _check_section(section)
    model = load(blob_path)
    data = bytes(model.blob.data)
    header = model.blob.header
    qio = None
    if model.quant != "f32":
        q = model.blob.meta["qio"]  # Model() has refused an integer blob without it
        qio = (float(q["input_scale"]), float(q["output_scale"]))
    info = Exported(
        path=os.fspath(out_path),
        symbol=symbol,
        prefix=symbol.upper(),
        size=len(data),
        alignment=int(header.alignment),
        crc32=int(model.blob.crc),
        in_features=model.in_features,
        out_features=model.out_features,
        state_bytes=model.state_bytes(1),
        scratch_bytes=model.scratch_bytes(1, 1),
        streamable=model.streamable,
        quant=model.quant,
        cflags=tuple(build_config(model.blob, fault_names=fault_names)),
    )
    if info.state_bytes == 0 or info.scratch_bytes == 0:
        raise RnnedgeError(
            f"{blob_path}: the C library reports no state or scratch size for batch 1"
        )
    from .blob.show import describe
    from .files import write_atomic

    text = header_text(data, info, os.fspath(blob_path), describe(model.blob), section, qio)
    write_atomic(out_path, text.encode("ascii"))
    return info


# -- command line ---------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of `rnnedge export-c` (cli.py's subparser, or this module's main)."""
    p.add_argument("model", help="the .rne file")
    p.add_argument(
        "-o", "--output", required=True, metavar="HEADER.h", help="the C header to write"
    )
    p.add_argument("--symbol", help="name of the C array (default: from MODEL's file name)")
    p.add_argument(
        "--section",
        metavar="SECTION",
        help="linker section for the array, e.g. .rodata.model (GCC/clang attribute)",
    )
    p.add_argument(
        "--no-fault-names",
        action="store_true",
        help="the build configuration also drops the status and fault names "
        "(-DRNE_NO_FAULT_NAMES: rne_strerror gives one short string; the codes stay)",
    )


def run(args: argparse.Namespace) -> int:
    """`rnnedge export-c`: write the header and say what is in it."""
    from .console import say

    e = export_c(
        args.model,
        args.output,
        symbol=args.symbol,
        section=args.section,
        fault_names=not args.no_fault_names,
    )
    say(
        f"wrote {e.path}: {e.symbol}[{e.size}] aligned {e.alignment}, {e.quant}, "
        f"{e.in_features} -> {e.out_features} features; one stream needs {e.prefix}_STATE_BYTES = "
        f"{e.state_bytes} and {e.prefix}_SCRATCH_BYTES = {e.scratch_bytes} bytes"
    )
    say(f"build the library for this model with: {' '.join(e.cflags) or '(no flags)'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m rnnedge.export_c MODEL.rne -o model_data.h ...` (the same as the subcommand)."""
    p = argparse.ArgumentParser(prog="rnnedge export-c", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except (RnnedgeError, OSError) as e:
        message = (
            str(e) if isinstance(e, RnnedgeError) else f"{e.filename or ''}: {e.strerror or e}"
        )
        from .console import printable

        print(printable(f"rnnedge export-c: error: {message}", newlines=False), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
