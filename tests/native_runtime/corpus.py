"""A corpus of corrupted artifacts, generated from one small exported artifact per format.

Each case is a directory (a copy of the artifact with one mutation) plus what the C API must answer:
``expect`` is a set of acceptable status names (``None``: any status, the host process only has to survive).
"""

from __future__ import annotations

import json
import random
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Case:
    name: str
    path: Path
    verify: bool
    expect: tuple[str, ...] | None


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _mutate_model(art: Path, dst: Path, fn) -> Path:
    out = _copy(art, dst)
    model = out / json.loads((out / "manifest.json").read_text())["model_file"]
    data = bytearray(model.read_bytes())
    model.write_bytes(bytes(fn(data)))
    return out


def _flip(rng: random.Random, n_bytes: int):
    def fn(data: bytearray) -> bytearray:
        for _ in range(n_bytes):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return data
    return fn


def _randomize_range(rng: random.Random, start: int, end: int):
    """Random bytes over [start, end): hits the flatbuffer header and root tables when start is 0."""
    def fn(data: bytearray) -> bytearray:
        for i in range(start, min(end, len(data))):
            data[i] = rng.randrange(256)
        return data
    return fn


def tflite_index_offsets(model: bytes) -> dict[str, list[int]]:
    """Byte offsets of every operator's opcode_index and its input/output tensor indices (uint32/int32 LE)."""
    from ai_edge_litert import schema_py_generated as schema

    m = schema.Model.GetRootAsModel(model, 0)
    opcode, tensors = [], []
    for g in range(m.SubgraphsLength()):
        sg = m.Subgraphs(g)
        for k in range(sg.OperatorsLength()):
            op = sg.Operators(k)
            o = op._tab.Offset(4)  # field 0: opcode_index
            if o:
                opcode.append(op._tab.Pos + o)
            for slot in (6, 8):  # fields 1, 2: inputs, outputs (vectors of int32)
                v = op._tab.Offset(slot)
                if v:
                    start = op._tab.Vector(v)
                    tensors += [start + 4 * i for i in range(op._tab.VectorLen(v))]
    return {"opcode_index": opcode, "tensor_index": tensors}


def _put_u32(offset: int, value: int):
    def fn(data: bytearray) -> bytearray:
        data[offset:offset + 4] = struct.pack("<I", value & 0xFFFFFFFF)
        return data
    return fn


def build(artifacts: dict[str, Path], root: Path, seed: int = 0) -> list[Case]:
    """~280 cases over the .pte and .tflite artifacts (and their manifests)."""
    rng = random.Random(seed)
    cases: list[Case] = []

    def add(name: str, path: Path, verify: bool, expect):
        cases.append(Case(name, path, verify, tuple(expect) if expect else None))

    for target in ("executorch", "tflite"):
        art = artifacts[target]
        size = (art / json.loads((art / "manifest.json").read_text())["model_file"]).stat().st_size
        t = target[:3]
        # With verification on, any change to the model file is a checksum error before the backend sees it.
        for i in range(6):
            add(f"{t}-sha-flip{i}", _mutate_model(art, root / f"{t}-sha-flip{i}", _flip(rng, 1)), True,
                ["EK_ERR_CHECKSUM"])
        for i, cut in enumerate((1, size // 2, size - 1)):
            add(f"{t}-sha-trunc{i}", _mutate_model(art, root / f"{t}-sha-trunc{i}", lambda d, c=cut: d[:c]), True,
                ["EK_ERR_CHECKSUM"])
        # With verification off, the backend's own parsing must reject or survive the file.
        for i in range(30):
            cut = rng.randrange(0, size)
            add(f"{t}-trunc{i}-{cut}", _mutate_model(art, root / f"{t}-trunc{i}", lambda d, c=cut: d[:c]), False,
                ["EK_ERR_LOAD"])
        for i in range(50):
            add(f"{t}-flip{i}", _mutate_model(art, root / f"{t}-flip{i}", _flip(rng, rng.choice((1, 2, 4, 16)))),
                False, None)
        for i in range(12):  # the header, root table and vtables live in the first bytes
            fn = _randomize_range(rng, rng.randrange(0, 64), 96)
            add(f"{t}-head{i}", _mutate_model(art, root / f"{t}-head{i}", fn), False, None)
        add(f"{t}-empty", _mutate_model(art, root / f"{t}-empty", lambda d: d[:0]), False, ["EK_ERR_LOAD"])
        add(f"{t}-zeros", _mutate_model(art, root / f"{t}-zeros", lambda d: bytearray(len(d))), False, ["EK_ERR_LOAD"])

    # .tflite: out-of-range operator (opcode) indices and tensor indices.
    art = artifacts["tflite"]
    model_file = art / json.loads((art / "manifest.json").read_text())["model_file"]
    offsets = tflite_index_offsets(model_file.read_bytes())
    picks = rng.sample(offsets["opcode_index"], min(8, len(offsets["opcode_index"])))
    for i, off in enumerate(picks):
        for j, value in enumerate((200, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)):
            add(f"tfl-opcode{i}-{j}", _mutate_model(art, root / f"tfl-opcode{i}-{j}", _put_u32(off, value)), False,
                ["EK_ERR_LOAD"])
    for i, off in enumerate(rng.sample(offsets["tensor_index"], min(10, len(offsets["tensor_index"])))):
        value = rng.choice((100000, 0x7FFFFFFF, 0xFFFFFFFE))  # -2: below the optional-tensor -1
        add(f"tfl-tensor{i}", _mutate_model(art, root / f"tfl-tensor{i}", _put_u32(off, value)), False,
            ["EK_ERR_LOAD"])

    # Manifest damage (ExecuTorch artifact; the same reader serves every target).
    art = artifacts["executorch"]
    manifest = json.loads((art / "manifest.json").read_text())

    def with_manifest(name: str, text: str, expect: str):
        d = _copy(art, root / name)
        (d / "manifest.json").write_text(text)
        add(name, d, True, [expect])

    with_manifest("man-notjson", "{\"schema_version\": 1,", "EK_ERR_MANIFEST")
    with_manifest("man-deep", "[" * 5000, "EK_ERR_MANIFEST")
    with_manifest("man-schema", json.dumps({**manifest, "schema_version": 2}), "EK_ERR_VERSION")
    with_manifest("man-minver", json.dumps({**manifest, "min_runtime_version": "99.0"}), "EK_ERR_VERSION")
    with_manifest("man-escape", json.dumps({**manifest, "model_file": "../model.pte"}), "EK_ERR_MANIFEST")
    with_manifest("man-dtype", json.dumps({**manifest, "methods": {"forward": {
        **manifest["methods"]["forward"],
        "inputs": [{"name": "image", "shape": [1, 3, 32, 32], "dtype": "complex"}]}}}),
        "EK_ERR_MANIFEST")
    with_manifest("man-target", json.dumps({**manifest, "target": "coreml"}), "EK_ERR_BACKEND_UNAVAILABLE")
    files = [dict(f, sha256="0" * 64) if f["path"] == manifest["model_file"] else f for f in manifest["files"]]
    with_manifest("man-sha", json.dumps({**manifest, "files": files}), "EK_ERR_CHECKSUM")
    d = _copy(art, root / "man-missing")
    (d / manifest["model_file"]).unlink()
    add("man-missing", d, True, ["EK_ERR_IO"])
    d = _copy(art, root / "man-absent")
    (d / "manifest.json").unlink()
    add("man-absent", d, True, ["EK_ERR_MANIFEST"])
    return cases


def sweep(artifacts: dict[str, Path], root: Path, seed: int, per_format: int) -> list[Case]:
    """Random mutations with verification off, weighted to where the flatbuffer structure lives (the first
    4 KiB and the last 8 KiB of these files; weights are in the middle): any status is fine, a crash is not."""
    rng = random.Random(seed)
    cases = []
    for target in ("executorch", "tflite"):
        art = artifacts[target]
        size = (art / json.loads((art / "manifest.json").read_text())["model_file"]).stat().st_size
        for i in range(per_format):
            if rng.random() < 0.5:
                fn = _flip(rng, rng.choice((1, 4, 16, 64)))
            else:
                start = rng.choice((rng.randrange(0, 4096), rng.randrange(max(0, size - 8192), size)))
                fn = _randomize_range(rng, start, start + rng.choice((1, 2, 4, 8, 32)))
            name = f"{target[:3]}-sweep{seed}-{i}"
            cases.append(Case(name, _mutate_model(art, root / name, fn), False, None))
    return cases
