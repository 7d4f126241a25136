"""The artifact directory and its manifest.json: the single format document.

An artifact is a directory holding the model file(s), ``manifest.json`` and
``reference_io.npz`` (inputs and the source model's outputs). It is written to a
temporary sibling directory and renamed into place, so a failed export never
leaves a half-written artifact behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.manifest import (  # noqa: F401 (the manifest types, importable from here as before)
    RESET_SIGNATURE, SCHEMA_VERSION, FileEntry, LedgerRow, Manifest, MethodSpec, TensorSpec, method_specs, migrate,
)
from edgekit.targets import TARGETS

# The oldest edgekit_runtime (native_runtime/, == the edgekit version) that reads artifacts written now.
# Manifests written before the field existed have none and load everywhere.
MIN_RUNTIME_VERSION = "0.1.0"
MANIFEST_NAME = "manifest.json"
REFERENCE_IO_NAME = "reference_io.npz"
MODEL_SUFFIXES = {t.suffix: t.name for t in TARGETS}  # model file suffix -> target


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a directory's files in sorted relative-path order."""
    digest = hashlib.sha256()
    paths = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in paths:
        if path.is_dir():
            digest.update(str(p.relative_to(path)).encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def bytes_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass
class Artifact:
    """A loaded artifact directory: ``info`` is the typed manifest, ``manifest`` its JSON (current layout)."""

    path: Path
    manifest: dict = field(repr=False)

    @cached_property
    def info(self) -> Manifest:
        return Manifest.from_json(self.manifest, str(self.path / MANIFEST_NAME))

    @property
    def target(self) -> str:
        return self.info.target

    @property
    def model_file(self) -> Path:
        return self.path / self.info.model_file

    @property
    def inputs(self) -> list[TensorSpec]:
        return self.info.inputs

    @property
    def outputs(self) -> list[TensorSpec]:
        return self.info.outputs

    @property
    def sha256(self) -> str:
        return self.info.model_entry().sha256

    @property
    def model_bytes(self) -> int:
        return self.info.model_entry().bytes

    def reference_io(self) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Reference inputs and the source model's outputs, keyed by tensor name."""
        with np.load(self.path / REFERENCE_IO_NAME) as data:
            ins = {k[3:]: data[k] for k in data.files if k.startswith("in/")}
            outs = {k[4:]: data[k] for k in data.files if k.startswith("out/")}
        return ins, outs


def load_artifact(path: str | os.PathLike) -> Artifact:
    """Open an artifact directory (or a bare model file inside one)."""
    p = Path(path)
    if p.is_file() or (p.is_dir() and any(t.bundle and p.suffix == t.suffix for t in TARGETS)):
        p = p.parent
    manifest_path = p / MANIFEST_NAME
    if not manifest_path.is_file():
        raise EdgekitError(
            "not_an_artifact",
            f"{path} is not an edgekit artifact: no {MANIFEST_NAME} in {p}",
            fix="pass the directory that `edgekit export` wrote (it holds manifest.json and the model file)",
        )
    source = str(manifest_path)
    try:
        raw = json.loads(manifest_path.read_text())
    except ValueError as e:
        raise EdgekitError("manifest_invalid", f"{source} is not JSON: {e}",
                           fix="re-export the model (the manifest is damaged)") from e
    manifest = migrate(raw, source)  # an older manifest in the current layout
    _check_runtime_version(manifest, manifest_path)
    Artifact(p, manifest).info  # noqa: B018 - every section parses, or a manifest_invalid error names the file
    return Artifact(p, manifest)


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) if x.isdigit() else 0 for x in str(v).split("."))


def _check_runtime_version(manifest: dict, manifest_path: Path) -> None:
    from edgekit import __version__

    need = manifest.get("min_runtime_version")
    if need is not None and _version_tuple(need) > _version_tuple(__version__):
        raise EdgekitError(
            "manifest_version", f"{manifest_path} needs edgekit >= {need}; this is {__version__}",
            fix="update edgekit, or re-export the model with this edgekit version")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_reference_io(dir_: Path, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> None:
    arrays = {f"in/{k}": v for k, v in inputs.items()} | {f"out/{k}": v for k, v in outputs.items()}
    np.savez_compressed(dir_ / REFERENCE_IO_NAME, **arrays)


def file_entries(dir_: Path) -> list[dict]:
    """One entry per top-level file or bundle (an .mlpackage counts as one)."""
    entries = []
    for p in sorted(dir_.iterdir()):
        if p.name == MANIFEST_NAME:
            continue
        entries.append({"path": p.name, "bytes": bytes_of(p), "sha256": sha256_of(p)})
    return entries


def write_manifest(dir_: Path, manifest: dict | Manifest) -> None:
    """Write ``manifest`` (typed, or its JSON) with the current schema version, the directory's files and the
    oldest native runtime that reads it (MIN_RUNTIME_VERSION unless the manifest says more)."""
    typed = manifest if isinstance(manifest, Manifest) else Manifest.from_json(
        dict(manifest, schema_version=SCHEMA_VERSION), "the manifest being written")
    typed.schema_version = SCHEMA_VERSION
    typed.files = [FileEntry.from_json(e) for e in file_entries(dir_)]
    if typed.min_runtime_version is None:
        typed.min_runtime_version = MIN_RUNTIME_VERSION
    text = json.dumps(typed.to_json(), indent=2, sort_keys=False, default=_json_default)
    (dir_ / MANIFEST_NAME).write_text(text)


def _json_default(o: object) -> object:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@contextlib.contextmanager
def staging_dir(final: Path) -> Iterator[Path]:
    """Yield a temp directory beside ``final``; on success it replaces ``final`` atomically.

    On failure nothing is left: the staging directory goes, and so do the parent
    directories this call created (a failed ``OUT/<model>/<target>`` leaves no empty ``OUT/<model>``).
    """
    created = [p for p in (final.parent, *final.parent.parents) if not p.exists()]
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; an artifact is an ordinary directory
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for p in created:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()  # only if still empty
        raise
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
