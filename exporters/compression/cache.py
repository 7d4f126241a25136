"""A disk cache of compressed models, so the CLI does not redo k-means (or fine-tuning) on every call.

Key: sha256 of the model (class, architecture repr, every state-dict tensor's name,
dtype, shape and bytes), the recipe's hash (exclude/only included), the training
data's fingerprint, the seed, ``strict`` and this edgekit version. Value: the
compressed state dict, each layer's WeightRecord, the skipped layers and the step
notes, stored with ``torch.save`` as plain tensors and JSON (loaded with
``weights_only=True``: no pickled code).

Location: ``$EDGEKIT_COMPRESSION_CACHE`` if set (``off`` disables the cache), else
``$XDG_CACHE_HOME/edgekit/compressed`` (default ``~/.cache/edgekit/compressed``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

ENV = "EDGEKIT_COMPRESSION_CACHE"
FORMAT = 1
log = logging.getLogger(__name__)


def cache_dir() -> Path | None:
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "none") else Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgekit" / "compressed"


def model_hash(model) -> str:
    """sha256 over the architecture (class + module repr), every state-dict tensor's bytes and the
    compression records a model already carries (a second recipe builds on them)."""
    import torch

    from edgekit.exporters.compression.record import compressed_layers

    h = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}\n{model!r}".encode())
    for name, (_, rec) in sorted(compressed_layers(model).items()):
        h.update(f"{name}:{json.dumps(rec.to_json(), sort_keys=True, default=_plain)}".encode())
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def data_fingerprint(data) -> str:
    if data is None:
        return "none"
    if hasattr(data, "fingerprint"):
        return data.fingerprint()
    if isinstance(data, (str, os.PathLike)):  # int8 calibration: a folder of images or an .npz
        return _path_fingerprint(Path(data))
    h = hashlib.sha256(f"train:{getattr(data, 'batch_size', '')}".encode())
    for a in (data.x_train, data.y_train):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _path_fingerprint(path: Path) -> str:
    h = hashlib.sha256(str(path.resolve()).encode())
    for f in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if f.is_file():
            h.update(f"{f.relative_to(path) if path.is_dir() else f.name}:".encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cache_key(model, recipe, data, *, seed: int, strict: bool) -> str:
    from edgekit import __version__

    parts = [FORMAT, __version__, model_hash(model), recipe.hash(), data_fingerprint(data), seed, strict]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def cached_compress(model, recipe, data=None, *, seed: int = 0, exclude=None, only=None, strict: bool = False):
    """``compress`` through the cache: ``(new_model, CompressionReport)``; same result as ``compress``."""
    import torch

    from edgekit.exporters.compression.recipe import compress, load_recipe, restrict

    root = cache_dir()
    full = restrict(load_recipe(recipe), only=only, exclude=exclude)
    if root is None:
        return compress(model, full, data, seed=seed, strict=strict)
    path = root / f"{cache_key(model, full, data, seed=seed, strict=strict)}.pt"
    if path.is_file():
        try:
            return _load(model, full, torch.load(path, weights_only=True))
        except Exception as exc:  # noqa: BLE001 - a stale or broken entry is recomputed
            log.warning("compression cache entry %s unreadable (%s); recomputing", path, exc)
    new, report = compress(model, full, data, seed=seed, strict=strict)
    _store(path, new, report)
    return new, report


def _store(path: Path, new, report) -> None:
    import torch

    from edgekit.exporters.compression.record import compressed_layers

    records = {}
    for name, (_, rec) in compressed_layers(new).items():
        meta = {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec) if f.name != "lut"}
        records[name] = {"meta": json.dumps(meta, default=_plain),
                         "lut": None if rec.lut is None else torch.from_numpy(np.asarray(rec.lut))}
    entry = {"format": FORMAT, "state_dict": new.state_dict(), "records": records,
             "steps": json.dumps(report.steps, default=_plain), "skipped": json.dumps(report.skipped)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(entry, tmp)
    os.replace(tmp, path)  # atomic: a concurrent reader sees the whole entry or none


def _load(model, recipe, entry: dict):
    import copy

    from edgekit.exporters.compression.provenance import Provenance, get_provenance, set_provenance
    from edgekit.exporters.compression.recipe import WEIGHT_TYPES
    from edgekit.exporters.compression.record import WeightRecord, set_record
    from edgekit.exporters.compression.report import CompressionReport

    if entry.get("format") != FORMAT:
        raise ValueError(f"cache format {entry.get('format')} != {FORMAT}")
    prev = get_provenance(model)
    root = prev.original if prev is not None else model
    new = copy.deepcopy(model, memo={} if root is model else {id(root): root})
    new.load_state_dict(entry["state_dict"])
    modules = dict(new.named_modules())
    for name, r in entry["records"].items():
        meta = json.loads(r["meta"])
        lut = None if r["lut"] is None else r["lut"].numpy()
        set_record(modules[name], WeightRecord(**(meta | {"steps": tuple(meta["steps"])}), lut=lut))
    skipped = tuple(json.loads(entry["skipped"]))
    new.eval()
    set_provenance(new, Provenance(root, recipe, skipped))
    original = {n: m.weight.detach().clone() for n, m in model.named_modules() if type(m).__name__ in WEIGHT_TYPES}
    steps = json.loads(entry["steps"]) + [{"cache": "hit"}]
    return new, CompressionReport.build(recipe, original, new, steps, skipped)


def _plain(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    return str(o)
