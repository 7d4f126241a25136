"""The artifact's reference inputs and outputs as raw files a phone test can read without numpy.

``reference_io.npz`` holds the inputs the parity check used and the source model's outputs. A
phone cannot read .npz easily, so each array is written as raw little-endian bytes in the
manifest's dtype and shape (row-major), listed in ``reference/index.json``; the README shows the
check to run on the device (the one thing a bundle cannot verify where it is made).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgekit.artifact import REFERENCE_IO_NAME, Artifact, method_specs


def write_reference(art: Artifact, dest: Path) -> dict | None:
    """Write ``dest/index.json`` and one .bin per tensor; None when the artifact has no reference I/O
    for a single-method model (LLM artifacts keep token-level parity in the manifest instead)."""
    methods = method_specs(art.manifest)
    if not (art.path / REFERENCE_IO_NAME).is_file() or len(methods) != 1:
        return None
    ins, outs = art.reference_io()
    (name, spec), = methods.items()
    if [t.name for t in spec.inputs] != list(ins) or any(t.name not in outs for t in spec.outputs):
        return None
    dest.mkdir(parents=True, exist_ok=True)
    index: dict = {"method": name, "byte_order": "little", "inputs": [], "outputs": []}
    for side, tensors, arrays in (("inputs", spec.inputs, ins), ("outputs", spec.outputs, outs)):
        for k, t in enumerate(tensors):
            a = np.ascontiguousarray(arrays[t.name], dtype=np.dtype(t.dtype).newbyteorder("<"))
            file = f"{side[:-1]}_{k}_{''.join(c if c.isalnum() else '_' for c in t.name)}.bin"
            (dest / file).write_bytes(a.tobytes())
            index[side].append({"name": t.name, "file": file, "shape": list(a.shape), "dtype": t.dtype})
    index["tolerance"] = (art.manifest.get("parity") or {}).get("tolerance")
    (dest / "index.json").write_text(json.dumps(index, indent=2))
    return index
