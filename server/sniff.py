"""Tell an upload's real format from its bytes; the client's filename and claim are only checked against it.

    >>> sniff_head(b"\\x1c\\x00\\x00\\x00TFL3" + bytes(8))
    'tflite'
"""

from __future__ import annotations

from pathlib import Path

from edgekit.targets import TARGET_NAMES, TARGETS

FORMATS = (*TARGET_NAMES, "edgekit")  # edgekit = zipped artifact directory
SUFFIX_FORMATS = {t.suffix: t.name for t in TARGETS}
ZIP_MAGIC = b"PK\x03\x04"
# ModelProto field numbers (onnx.proto): ir_version .. functions.
_ONNX_FIELDS = {1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 21, 25}


def is_pickle(head: bytes) -> bool:
    # Protocol 2+ starts with PROTO (0x80) and the protocol number.
    return len(head) >= 2 and head[0] == 0x80 and 1 <= head[1] <= 5


def sniff_head(head: bytes) -> str | None:
    """Format from the first bytes alone, or None (ONNX needs the whole file: see sniff_file)."""
    if head[4:8] == b"TFL3":
        return "tflite"
    # ExecuTorch flatbuffer file identifier: "ET" + two-digit schema version, e.g. ET12.
    if head[4:6] == b"ET" and head[6:8].isdigit():
        return "executorch"
    if head[:4] == ZIP_MAGIC:
        return "zip"
    return None


def sniff_file(path: Path) -> str | None:
    """Format of a file: tflite, executorch, zip, onnx, pickle, or None."""
    with open(path, "rb") as f:
        head = f.read(16)
    if is_pickle(head):
        return "pickle"
    fmt = sniff_head(head)
    if fmt:
        return fmt
    return "onnx" if _looks_like_onnx(path) else None


def _looks_like_onnx(path: Path, max_fields: int = 10_000) -> bool:
    """Walk the top-level protobuf fields: all must be valid ModelProto fields and a graph (7) present."""
    data = path.read_bytes() if path.stat().st_size < 64 * 1024 * 1024 else None
    if data is None:
        with open(path, "rb") as f:
            data = f.read()
    pos, seen = 0, set()
    try:
        for _ in range(max_fields):
            if pos == len(data):
                break
            key, pos = _varint(data, pos)
            field, wire = key >> 3, key & 7
            if field not in _ONNX_FIELDS:
                return False
            if wire == 0:
                _, pos = _varint(data, pos)
            elif wire == 2:
                n, pos = _varint(data, pos)
                pos += n
                if pos > len(data):
                    return False
            else:
                return False
            seen.add(field)
    except IndexError:
        return False
    return pos == len(data) and 7 in seen and 1 in seen


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")


def claimed_format(filename: str | None, claim: str | None) -> str | None:
    """What the client says it sent: an explicit claim, else the filename's suffix."""
    if claim:
        return claim
    if not filename:
        return None
    name = filename.lower()
    if name.endswith(".zip"):
        name = name[:-4]
        suffix = Path(name).suffix
        return SUFFIX_FORMATS.get(suffix, "edgekit") if suffix else "edgekit"
    return SUFFIX_FORMATS.get(Path(name).suffix)
