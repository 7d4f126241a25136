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
from pathlib import Path
from typing import Iterator

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.inputspec import normalize_dim
from edgekit.targets import TARGETS

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
REFERENCE_IO_NAME = "reference_io.npz"
MODEL_SUFFIXES = {t.suffix: t.name for t in TARGETS}  # model file suffix -> target


@dataclass(frozen=True)
class TensorSpec:
    """A tensor in a signature. A dimension is an int (concrete), a name (symbolic: every axis with the same
    name has the same size) or None (unknown)."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_json(cls, d: dict) -> "TensorSpec":
        return cls(d["name"], tuple(normalize_dim(s) for s in d["shape"]), d["dtype"])

    @classmethod
    def of(cls, name: str, array: np.ndarray) -> "TensorSpec":
        return cls(name, tuple(int(s) for s in array.shape), str(array.dtype))


@dataclass(frozen=True)
class MethodSpec:
    """One callable entry point of an artifact: its name, I/O signature and the file holding it."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    file: str | None = None

    def to_json(self) -> dict:
        return {"file": self.file, "inputs": [t.to_json() for t in self.inputs],
                "outputs": [t.to_json() for t in self.outputs]}

    @classmethod
    def from_json(cls, name: str, d: dict) -> "MethodSpec":
        return cls(name, tuple(TensorSpec.from_json(t) for t in d["inputs"]),
                   tuple(TensorSpec.from_json(t) for t in d["outputs"]), d.get("file"))


# The in-place-cache LLM .pte has a `reset` method that manifests before the methods list did not name.
RESET_SIGNATURE = {"inputs": [{"name": "token", "shape": [1], "dtype": "int64"}],
          "outputs": [{"name": "token_out", "shape": [1], "dtype": "int64"}]}


def method_specs(manifest: dict) -> dict[str, MethodSpec]:
    """The artifact's methods by name, in manifest order.

    Manifests written before methods were listed still load: a classifier's one
    signature becomes ``forward``, and an in-place-cache LLM gains its ``reset``.
    """
    listed = manifest.get("methods")
    if not listed:
        sig = manifest["signature"]
        return {"forward": MethodSpec.from_json("forward", {**sig, "file": manifest.get("model_file")})}
    methods = {name: MethodSpec.from_json(name, d) for name, d in listed.items()}
    if manifest.get("kv_cache") == "in_place" and "reset" not in methods:
        methods["reset"] = MethodSpec.from_json("reset", {**RESET_SIGNATURE, "file": manifest.get("model_file")})
    return methods


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
    """A loaded artifact directory."""

    path: Path
    manifest: dict = field(repr=False)

    @property
    def target(self) -> str:
        return self.manifest["target"]

    @property
    def model_file(self) -> Path:
        return self.path / self.manifest["model_file"]

    @property
    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec.from_json(t) for t in self.manifest["signature"]["inputs"]]

    @property
    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec.from_json(t) for t in self.manifest["signature"]["outputs"]]

    @property
    def sha256(self) -> str:
        return next(f["sha256"] for f in self.manifest["files"] if f["path"] == self.manifest["model_file"])

    @property
    def model_bytes(self) -> int:
        return next(f["bytes"] for f in self.manifest["files"] if f["path"] == self.manifest["model_file"])

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
    manifest = json.loads(manifest_path.read_text())
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise EdgekitError(
            "manifest_version",
            f"{manifest_path} has schema_version {version!r}; this edgekit reads {SCHEMA_VERSION}",
            fix="re-export the model with this edgekit version",
        )
    return Artifact(p, manifest)


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


def write_manifest(dir_: Path, manifest: dict) -> None:
    manifest = dict(manifest, schema_version=SCHEMA_VERSION, files=file_entries(dir_))
    (dir_ / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=False, default=_json_default))


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
