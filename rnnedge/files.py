"""Files: read a regular file without blocking on a FIFO or device, write one atomically.

Used for models, arrays and blobs (rnnedge/conversion.py, rnnedge/converter/load.py, the CLI,
and the file checks of rnnedge.load in rnnedge/model.py) and for C headers (rnnedge/export_c.py).
Stdlib only.
"""

from __future__ import annotations

import os
import re
import secrets
import stat

from .errors import RnnedgeError

_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))  # fmt: skip


def file_kind(mode: int) -> str | None:
    """What a stat mode is, in words ("a FIFO (named pipe)", ...), if it is not a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def open_nonblocking(path: str, flags: int) -> int:
    """os.open for open(opener=): O_NONBLOCK, so that opening a FIFO cannot block before fstat
    tells what it is (no effect on a regular file)."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def read_regular_file(path: str | os.PathLike, label: str, error: type[RnnedgeError]) -> bytes:
    """The bytes of a regular file. A FIFO, device or socket is refused with `error` naming it,
    without blocking on it: the file is opened non-blocking and checked with fstat before any
    read. OSError (missing, permission, IsADirectoryError for a directory) is the caller's to
    word."""
    with open(os.fspath(path), "rb", opener=open_nonblocking) as f:  # a directory: IsADirectoryError
        kind = file_kind(os.fstat(f.fileno()).st_mode)
        if kind is not None:
            raise error(f"{label} is {kind}, not a regular file: rnnedge reads models and arrays from files only")
        return f.read()


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a new temporary file in the same directory, flush it to disk, then rename
    it over `path`. On any failure the temporary file is removed and an existing `path` is left as
    it was: never a half-written file. (Blobs here, C headers in export_c.)

    The temporary file is named `.BASE.PID.RANDOM.tmp` after the writing process: one left by a
    process that was killed (SIGKILL, power loss) is removed by the next write to the same path
    once no process of that id runs any more."""
    directory, base = os.path.split(os.path.abspath(os.fspath(path)))
    _remove_stale_temporaries(directory, base)
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _remove_stale_temporaries(directory: str, base: str) -> None:
    """Remove the temporary files of write_atomic(directory/base) whose process is gone."""
    pattern = re.compile(re.escape(f".{base}.") + r"(\d+)\.[0-9a-f]+\.tmp\Z")
    try:
        names = os.listdir(directory)
    except OSError:
        return  # the write itself will report the directory
    for name in names:
        m = pattern.match(name)
        if m and int(m.group(1)) != os.getpid() and not _process_exists(int(m.group(1))):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def _process_exists(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process there: keep every file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or an id this system cannot test: keep its file
    return True


def onnx_instead_of_blob(path: str | os.PathLike, data: bytes | None = None) -> str | None:
    """The message for an ONNX model given where a .rne blob is expected, if the file (`data`, or
    the first bytes of a regular file at `path`) looks like one: not a blob's magic b"RNNE", and
    a name ending in .onnx or the first bytes of an ONNX ModelProto (field 1, ir_version, a
    varint 1..15: bytes 0x08 0x01..0x0f). Else None."""
    if data is None:
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                return None
            with open(path, "rb") as f:
                data = f.read(16)
        except OSError:
            return None
    if data[:4] == b"RNNE":
        return None
    proto = len(data) > 1 and data[0] == 0x08 and 1 <= data[1] <= 15
    if not (proto or os.fspath(path).lower().endswith(".onnx")):
        return None
    return (f"{os.fspath(path)} is an ONNX model, not an rnnedge blob: convert it first: "
            f"rnnedge convert {os.fspath(path)} -o MODEL.rne")
