"""The `rnnedge` command: argparse subcommands, one function each.

Exit status 0 on success, 1 on a user error (one line on stderr, no traceback unless --debug).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

from . import __version__
from .errors import RnnedgeError


def _fmt_bytes(n: int) -> str:
    return f"{n} B" if n < 10 * 1024 else f"{n / 1024:.1f} KiB"


def cmd_convert(args: argparse.Namespace) -> int:
    from .conversion import convert
    from .format import describe, read_blob

    out = args.output or os.path.splitext(args.model)[0] + ".rne"
    net = convert(args.model, out, quant=args.quant, name=args.name)
    with open(out, "rb") as f:
        data = f.read()
    print(f"wrote {out} ({_fmt_bytes(len(data))}, {args.quant}) from {args.model}")
    print(describe(read_blob(data)))
    if net.folded:
        print(f"folded away ({len(net.folded)}): " + ", ".join(net.folded))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .format import describe, read_blob

    try:
        with open(args.model, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise RnnedgeError(f"{args.model}: is a directory, not an rnnedge blob") from None
    except OSError as e:
        raise RnnedgeError(f"{args.model}: cannot read: {e.strerror or e}") from None
    blob = read_blob(data, verify_crc=False, source=args.model)
    print(f"{args.model}: {_fmt_bytes(len(data))}")
    print(describe(blob))
    if not blob.crc_ok:
        raise RnnedgeError(f"{args.model}: checksum mismatch: the blob is corrupt")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnedge",
        description="Convert, inspect and run recurrent networks on edge hardware.",
    )
    parser.add_argument("--version", action="version", version=f"rnnedge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("convert", help="convert an ONNX model to a .rne blob")
    p.add_argument("model", help="the ONNX model file")
    p.add_argument("-o", "--output", help="the .rne file to write (default: MODEL with .rne)")
    p.add_argument("--quant", default="f32", help="number format: f32 (default)")
    p.add_argument("--name", help="model name stored in the blob (default: the graph's name)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("info", help="describe a .rne blob without running it")
    p.add_argument("model", help="the .rne file")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (RnnedgeError, OSError) as e:
        if args.debug:
            raise
        message = str(e) if isinstance(e, RnnedgeError) else f"{e.filename or ''}: {e.strerror or e}"
        print(f"rnnedge {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
