"""Text for the terminal: `printable` escapes what a terminal would act on, `say` prints through it.
Used by the CLI and export-c (their one way to print names that come from a model file)."""

from __future__ import annotations


def printable(text: str, newlines: bool = True) -> str:
    """`text` safe to print on a terminal: every character that is not printable (escape
    sequences, carriage returns, bidirectional overrides, other control and format characters)
    as a Python-style escape (\\x1b, \\u202e). ONNX names, doc strings and
    file names reach the terminal only through this (every printer of the CLI, and export-c's
    C comment, which escapes more on top). newlines=False escapes them too (one-line messages)."""
    return "".join(c if (c == "\n" and newlines) or c.isprintable() else _escape(c) for c in text)


def _escape(c: str) -> str:
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def say(*parts: object) -> None:
    """print() for the CLI: the text through printable()."""
    print(printable(" ".join(str(p) for p in parts)))
