"""The clustered LLM checkpoint: ``model.clustered.safetensors`` + ``config.json`` + ``tokenizer.json``.

Per clustered weight it holds the indices packed at the bit width (``<key>.indices``, uint8 stream,
LSB first) and the table (``<key>.lut``, fp16, 2**bits entries); every other tensor is dense fp32.
The header's metadata names the format, its version and each layer's shape and bits. Written by
``edgekit compress-llm`` (``exporters/llm_compress.py``), read by ``edgekit export-llm``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError

FORMAT_KIND = "edgekit-clustered-llm"
FORMAT_VERSION = 1
CLUSTERED_FILE = "model.clustered.safetensors"
RESULT_FILE = "compress_result.json"


def clustered_layers(model) -> dict[str, tuple[object, object]]:
    """HF state-dict key of each clustered weight -> (module, WeightRecord)."""
    from edgekit.exporters.compression.record import compressed_layers

    return {f"model.{name}.weight": (m, r) for name, (m, r) in compressed_layers(model).items()}


def lut_indices(weight: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Index into ``table`` of every weight; the weights must be table values exactly."""
    w = weight.ravel()
    idx = np.abs(w[:, None] - table[None, :].astype(np.float32)).argmin(1).astype(np.uint8)
    if not np.array_equal(table.astype(np.float32)[idx], w):
        raise EdgekitError("not_clustered", "weight values are not all entries of its table",
                           fix="finalize the clustering (write_lut) before saving a clustered checkpoint")
    return idx


def layer_bytes(shape, bits: int) -> dict:
    """Indices packed at ``bits`` + an fp16 table of 2**bits entries, vs fp32."""
    from edgekit.kernels.bitpack import packed_nbytes

    numel = int(np.prod(shape))
    return {"indices": packed_nbytes(numel, bits), "table": 2 ** bits * 2, "fp32": numel * 4}


def size_report(model) -> dict:
    rows = {key: layer_bytes(tuple(m.weight.shape), r.bits) | {"bits": r.bits}
            for key, (m, r) in clustered_layers(model).items()}
    clustered = sum(r["indices"] + r["table"] for r in rows.values())
    fp32 = sum(r["fp32"] for r in rows.values())
    rest = sum(p.numel() * 4 for n, p in model.state_dict().items()
               if f"model.{n}" not in rows and n not in rows)
    return {"layers": len(rows), "linear_fp32_bytes": fp32, "linear_clustered_bytes": clustered,
            "indices_bytes": sum(r["indices"] for r in rows.values()),
            "table_bytes": sum(r["table"] for r in rows.values()),
            "ratio": clustered / fp32 if fp32 else 1.0, "other_fp32_bytes": rest}


def save_clustered(model, out_dir: str | Path, tokenizer_file: str | Path, extra: dict | None = None) -> Path:
    """config.json + tokenizer.json + model.clustered.safetensors (packed indices + fp16 tables)."""
    import torch
    from safetensors.torch import save_file

    from edgekit.kernels.bitpack import pack_bits
    from edgekit.model_zoo.llama import hf_config

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    layers = clustered_layers(model)
    state, meta = {}, {}
    for k, v in model.state_dict().items():
        key = k if k.startswith("lm_head") else f"model.{k}"
        if key not in layers:
            state[key] = v.detach().contiguous()
    for key, (m, rec) in layers.items():
        if rec.lut.shape[0] != 1 or rec.per_channel_scale or "sparse" in rec.kind:
            raise EdgekitError("unsupported_clustering", f"{key}: only one table per tensor is stored",
                               fix="cluster the LLM with per-tensor tables (llm_recipe)")
        table = rec.lut[0].astype(np.float16)
        w = m.weight.detach().cpu().numpy()
        state[f"{key}.indices"] = torch.from_numpy(pack_bits(lut_indices(w, table), rec.bits))
        state[f"{key}.lut"] = torch.from_numpy(table)
        meta[key] = {"shape": list(w.shape), "bits": rec.bits, "steps": list(rec.steps)}
    from edgekit import __version__

    save_file(state, str(out / CLUSTERED_FILE), metadata={
        "kind": FORMAT_KIND, "version": str(FORMAT_VERSION), "producer": f"edgekit {__version__}",
        "layers": json.dumps(meta, sort_keys=True)})
    (out / "config.json").write_text(json.dumps(hf_config(model.cfg), indent=2))
    shutil.copy(tokenizer_file, out / "tokenizer.json")
    if extra is not None:
        (out / RESULT_FILE).write_text(json.dumps(extra, indent=2))
    return out


def is_clustered(directory: str | Path) -> bool:
    return (Path(directory) / CLUSTERED_FILE).is_file()


def load_clustered(directory: str | Path, max_seq_len: int | None = None):
    """The Llama with clustered weights decompressed to fp32; each clustered module carries its LUT record."""
    import torch
    from safetensors import safe_open

    from edgekit.exporters.compression.record import WeightRecord, set_record
    from edgekit.kernels.bitpack import unpack_bits
    from edgekit.model_zoo.llama import Llama, config_from_hf

    d = Path(directory)
    path = d / CLUSTERED_FILE
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("kind") != FORMAT_KIND:
            raise EdgekitError("not_a_clustered_checkpoint", f"{path} has kind {meta.get('kind')!r}, "
                               f"not {FORMAT_KIND!r}", fix="write it with edgekit compress-llm")
        if int(meta.get("version", 0)) > FORMAT_VERSION:
            raise EdgekitError("clustered_version", f"{path} is version {meta['version']}; this edgekit reads "
                               f"{FORMAT_VERSION}", fix="upgrade edgekit")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    layers = json.loads(meta["layers"])
    cfg = config_from_hf(json.loads((d / "config.json").read_text()), max_seq_len)
    state, records = {}, {}
    for key, info in layers.items():
        table = tensors.pop(f"{key}.lut").numpy()
        numel = int(np.prod(info["shape"]))
        idx = unpack_bits(tensors.pop(f"{key}.indices").numpy(), info["bits"], numel)
        state[key] = torch.from_numpy(table.astype(np.float32)[idx].reshape(info["shape"]))
        records[key] = WeightRecord(kind="lut", bits=info["bits"], steps=tuple(info.get("steps", ("dkm",))),
                                    lut=table.astype(np.float32)[None])
    state.update(tensors)
    state = {k.removeprefix("model."): v for k, v in state.items()}
    model = Llama(cfg)
    model.load_state_dict(state, strict=True)
    for name, module in model.named_modules():
        if (rec := records.get(f"model.{name}.weight")) is not None:
            set_record(module, rec)
    return model.eval()
