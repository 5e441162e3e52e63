"""The rnnedge exception hierarchy. Every error the package raises on bad input is one of these."""

from __future__ import annotations


class RnnedgeError(Exception):
    """Base class of every rnnedge error."""


class BlobError(RnnedgeError):
    """A .rne blob is missing, unreadable, corrupt, or of a newer format version.

    `code` is the C status code (RNE_E*) when the C loader reported it, else None.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class ConvertError(RnnedgeError):
    """An ONNX model (or a part of it) cannot be converted."""


class UnsupportedOpError(ConvertError):
    """The graph holds an op, or an attribute value, that the converter does not support."""


class ConvertWarning(UserWarning):
    """The converter converted a model but could not prove something about it (a shape that
    depends on run-time sizes); the message names the node, the tensor and the shapes."""


class InputError(RnnedgeError, ValueError):
    """An input array, state or argument has the wrong shape, dtype or value."""


class VerifyError(RnnedgeError):
    """`rnnedge verify` cannot compare a blob with an ONNX model. `side` names the side at fault:
    "rnnedge" (the blob), "onnxruntime" (the ONNX model or its run), "pair" (the two are not the
    same model), "input" (the data or an option); the message says why and what to do."""

    def __init__(self, message: str, side: str) -> None:
        super().__init__(message)
        self.side = side


class NotStreamableError(RnnedgeError):
    """The model reads the sequence backwards (bidirectional or reverse) and cannot be stepped."""


class NotBuiltError(RnnedgeError, ImportError):
    """The compiled C library (rnnedge._rnnedge) is not built, or cannot be loaded: the runtime
    (rnnedge.load, Model, Stream) cannot run. Converting, quantizing and reading blobs need no
    build. The message names the fix."""


class StreamBusyError(RnnedgeError, RuntimeError):
    """A stream was used from a second thread while a first was inside a call on it."""
