"""What a person needs to tell artifacts apart: model, target, recipe, bytes and parity from the manifest.

Read from the stored manifest.json (plain JSON: nothing is loaded with a
runtime in the API process), cached per sha256 since stored artifacts never
change. A bare model file has no manifest: its format and bytes are all there is.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.server.store import Store

from edgekit.artifact import MANIFEST_NAME
from edgekit.report import parity_cell

_MAX_MANIFEST_BYTES = 4 << 20
_cache: dict[str, dict] = {}


def summary(row: dict, store: Store) -> dict:
    """{"model", "target", "recipe", "precision", "model_bytes", "parity", "label"} for an artifact row."""
    key = row["sha256"]
    if key not in _cache:
        _cache[key] = _summarize(row, _manifest(store.dir_for(key) / row["model_path"]))
    return _cache[key]


def _manifest(path: Path) -> dict | None:
    f = path / MANIFEST_NAME if path.is_dir() else path.parent / MANIFEST_NAME
    try:
        if f.is_file() and f.stat().st_size <= _MAX_MANIFEST_BYTES:
            m = json.loads(f.read_text())
            return m if isinstance(m, dict) else None
    except (OSError, ValueError):
        pass
    return None


def _summarize(row: dict, m: dict | None) -> dict:
    if not m:
        return {"model": None, "target": row["format"], "recipe": None, "precision": None,
                "model_bytes": row["bytes"], "parity": None, "label": f"{row['filename'] or row['id']} "
                f"({row['format']})"}
    model = m.get("model") if isinstance(m.get("model"), dict) else {}
    name = model.get("name") or model.get("class") or "?"
    if model.get("class") and model.get("class") != name:
        name = f"{name} ({model['class']})"
    recipe = ((m.get("compression") or {}).get("recipe") or {}) if isinstance(m.get("compression"), dict) else {}
    recipe_name = recipe.get("name") if isinstance(recipe, dict) else None
    files = m.get("files") if isinstance(m.get("files"), (list, dict)) else []
    model_bytes = _model_bytes(files, m.get("model_file")) or row["bytes"]
    try:
        parity = parity_cell(m.get("parity")) if m.get("parity") else None
    except (KeyError, TypeError, ValueError):
        parity = None
    target = str(m.get("target") or row["format"])
    label = " ".join(str(x) for x in (model.get("name") or name, target, recipe_name or "") if x)
    return {"model": name, "target": target, "recipe": recipe_name, "precision": m.get("precision"),
            "model_bytes": model_bytes, "parity": parity, "label": label}


def _model_bytes(files, model_file) -> int | None:
    """Bytes of the model file(s) alone (the manifest lists every file with its bytes)."""
    entries = files.items() if isinstance(files, dict) else ((f.get("path"), f) for f in files if isinstance(f, dict))
    total = 0
    for path, info in entries:
        if isinstance(info, dict) and isinstance(info.get("bytes"), int) and model_file and \
                str(path or "").startswith(str(model_file)):
            total += info["bytes"]
    return total or None
