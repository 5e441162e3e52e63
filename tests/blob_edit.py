"""Editing valid blobs into damaged ones for tests and fuzzing: the CRC re-signed after every
edit, so that the damage reaches the checks behind the checksum."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

HEADER = struct.Struct("<4s11I4I")  # docs/format.md, rne_header


def refresh_crc(data: bytes | bytearray) -> bytes:
    b = bytearray(data)
    struct.pack_into("<I", b, len(b) - 4, zlib.crc32(b[:-4]))
    return bytes(b)


def patched(data: bytes, offset: int, spec: str, *values) -> bytes:
    """data with struct `spec` written at offset and the CRC made valid again."""
    b = bytearray(data)
    struct.pack_into("<" + spec, b, offset, *values)
    return refresh_crc(b)


def metadata(data: bytes) -> bytes:
    """The metadata bytes of a blob, as stored."""
    f = HEADER.unpack_from(data, 0)
    return bytes(data[f[6] : f[6] + f[7]])


def with_metadata(data: bytes, meta: bytes | str | dict[str, Any]) -> bytes:
    """`data` with its metadata replaced by `meta` (a dict is dumped as JSON, a str encoded):
    the old metadata zeroed, the new appended after the last section, the header's meta_off,
    meta_size and file_size and the CRC rewritten. Layers and tensors stay where they were."""
    if isinstance(meta, dict):
        meta = json.dumps(meta)
    if isinstance(meta, str):
        meta = meta.encode("utf-8")
    f = list(HEADER.unpack_from(data, 0))
    body = bytearray(data[: f[5] - 4])
    body[f[6] : f[6] + f[7]] = bytes(f[7])
    f[6], f[7] = len(body), len(meta)
    f[5] = len(body) + len(meta) + 4
    body += meta
    HEADER.pack_into(body, 0, *f)
    return refresh_crc(body + bytes(4))


def edit_metadata(data: bytes, **changes: Any) -> bytes:
    """`data` with top-level metadata keys set (a value of `...` deletes the key)."""
    meta = json.loads(metadata(data))
    for k, v in changes.items():
        if v is ...:
            meta.pop(k, None)
        else:
            meta[k] = v
    return with_metadata(data, meta)
