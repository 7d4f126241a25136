"""manifest.json as types: the manifest, its files, methods and compression ledger rows.

``Manifest.from_json`` reads every manifest an edgekit has written: ``migrate`` first
brings an older document to the current layout (see MIGRATIONS), then each section
becomes a dataclass. ``to_json`` writes the same keys the format has always had
(``schema_version``, ``target``, ``model_file``, ``files`` [{path, sha256, bytes}],
``signature``, ``methods``, ...), so readers that take the JSON directly (the server,
the native runtime) are unaffected. Sections that belong to one kind of artifact
(an LLM's ``tokenizer``, ``kv_cache``, ``first``) and keys a newer edgekit added
travel in ``extra`` unchanged.

    >>> m = Manifest.from_json({"schema_version": 1, "target": "onnx", "model_file": "model.onnx",
    ...     "signature": {"inputs": [{"name": "x", "shape": [1, 4], "dtype": "float32"}], "outputs": []},
    ...     "files": [{"path": "model.onnx", "bytes": 10, "sha256": "ab"}]})
    >>> list(m.methods), m.model_entry().bytes
    (['forward'], 10)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.inputspec import normalize_dim

# The on-disk format's version. Adding a key is not a new version (readers skip keys they do not know);
# renaming or reshaping one is: bump it and register the step from the old version in MIGRATIONS.
SCHEMA_VERSION = 1


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
    """The artifact's methods by name, in manifest order (of a JSON manifest, migrated as it is read)."""
    return {name: MethodSpec.from_json(name, d) for name, d in _methods_listed(dict(manifest))["methods"].items()}


@dataclass(frozen=True)
class FileEntry:
    """A top-level file or bundle of the artifact directory (an .mlpackage counts as one)."""

    path: str
    bytes: int
    sha256: str

    def to_json(self) -> dict:
        return {"path": self.path, "bytes": self.bytes, "sha256": self.sha256}

    @classmethod
    def from_json(cls, d: dict) -> "FileEntry":
        return cls(str(d["path"]), int(d["bytes"]), str(d["sha256"]))


def _split(cls, d: dict) -> tuple[dict, dict]:
    """(the keys that are fields of ``cls``, the others) of ``d``."""
    names = {f.name for f in fields(cls)} - {"extra"}
    return {k: v for k, v in d.items() if k in names}, {k: v for k, v in d.items() if k not in names}


def _json_of(obj, skip_none: tuple[str, ...] = ()) -> dict:
    """A dataclass's fields as JSON, None left out for the optional keys in ``skip_none``, then ``extra``."""
    out = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name == "extra" or (value is None and f.name in skip_none):
            continue
        out[f.name] = value.to_json() if hasattr(value, "to_json") else value
    return out | obj.extra


@dataclass
class LedgerRow:
    """One compressed layer: what the recipe asked, what the target can do, what the file holds."""

    # Every exporter writes all of these; a hand-written row may leave some out (None: not given).
    layer: str
    shape: list[int] | None = None
    requested: dict[str, Any] | None = None  # the compression record: kind, bits, group_size, sparsity, ...
    capability: str | None = None  # the target's capability for the kind: native | decompressed | rejected
    encoded: dict[str, Any] | None = None  # kind (native | decompressed | re-quantized), format, index_bits, ...
    expected_bytes: int | None = None  # what the recipe's encoding takes (indices at their bit width + tables)
    dense_bytes: int | None = None     # the same weights stored dense
    bytes_written: int | None = None   # what the artifact holds for them
    widened: dict | None = None    # more index bits written than asked (an export refuses these)
    extra: dict = field(default_factory=dict)

    @property
    def encoded_kind(self) -> str | None:
        return (self.encoded or {}).get("kind")

    def to_json(self) -> dict:
        return _json_of(self, skip_none=tuple(f.name for f in fields(self)))

    @classmethod
    def from_json(cls, d: dict) -> "LedgerRow":
        known, extra = _split(cls, d)
        return cls(**known, extra=extra)


@dataclass
class Compression:
    """The manifest's ``compression`` section: the recipe, the ledger and its totals."""

    recipe: dict | None = None     # {name, hash, document}, or None (no recipe: e.g. an eDKM checkpoint)
    ledger: list[LedgerRow] = field(default_factory=list)
    summary: dict | None = None    # bytes written vs dense, decompressed layers, ...
    file: dict | None = None       # the weight tensors read back from the model file
    extra: dict = field(default_factory=dict)  # skipped layers, the int8 plan, LLM weight formats, ...

    def to_json(self) -> dict:
        out = _json_of(self, skip_none=("summary", "file"))
        out["ledger"] = [r.to_json() for r in self.ledger]
        return out

    @classmethod
    def from_json(cls, d: dict) -> "Compression":
        known, extra = _split(cls, d)
        known["ledger"] = [LedgerRow.from_json(r) for r in known.get("ledger") or []]
        return cls(**known, extra=extra)


_HEAD = ("kind", "created", "producer", "model", "target", "options", "precision", "model_file", "signature",
         "methods", "target_info", "compression", "parity")
_TAIL = ("min_runtime_version", "schema_version", "files")


@dataclass
class Manifest:
    """manifest.json: the single format document of an artifact directory."""

    target: str                    # a name from edgekit.targets
    model_file: str                # the main model file (an LLM's decode file)
    signature: dict                # {inputs, outputs[, output_kinds]}: the main method's I/O
    methods: dict[str, MethodSpec]
    files: list[FileEntry] = field(default_factory=list)
    kind: str = "edgekit-artifact"  # or "edgekit-llm"
    created: str | None = None
    producer: dict[str, str] = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    precision: str | None = None
    target_info: dict | None = None
    compression: Compression | None = None
    parity: dict | None = None
    min_runtime_version: str | None = None  # the oldest native runtime that runs it (absent: any)
    schema_version: int = SCHEMA_VERSION
    extra: dict = field(default_factory=dict)  # kind-specific sections (tokenizer, kv_cache, first, ...)

    @property
    def inputs(self) -> list[TensorSpec]:
        return [TensorSpec.from_json(t) for t in self.signature["inputs"]]

    @property
    def outputs(self) -> list[TensorSpec]:
        return [TensorSpec.from_json(t) for t in self.signature["outputs"]]

    def model_entry(self) -> FileEntry:
        return next(f for f in self.files if f.path == self.model_file)

    def to_json(self) -> dict:
        out = _json_of(self, skip_none=("created", "precision", "target_info", "compression", "parity",
                                        "min_runtime_version"))
        out["methods"] = {name: m.to_json() for name, m in self.methods.items()}
        out["files"] = [f.to_json() for f in self.files]
        # the order manifests have always had; kind-specific sections before the version and the files
        head = {k: out.pop(k) for k in _HEAD if k in out}
        tail = {k: out.pop(k) for k in _TAIL if k in out}
        return head | out | tail

    @classmethod
    def from_json(cls, d: dict, source: str = "manifest") -> "Manifest":
        known, extra = _split(cls, migrate(d, source))
        try:
            known["methods"] = {n: MethodSpec.from_json(n, m) for n, m in known["methods"].items()}
            known["files"] = [FileEntry.from_json(f) for f in known.get("files") or []]
            if known.get("compression") is not None:
                known["compression"] = Compression.from_json(known["compression"])
            return cls(**known, extra=extra)
        except _MALFORMED as e:
            raise _invalid(source, e) from e


# --- migration -----------------------------------------------------------------------------------
# Older layouts of schema_version 1, brought to the current one in order (each a no-op on newer ones).

def _methods_listed(m: dict) -> dict:
    """Before methods were listed (edgekit <= 2026-11-27): the one signature is ``forward``, and an
    in-place-cache LLM .pte gains its ``reset`` method."""
    if not m.get("methods"):
        m["methods"] = {"forward": {"file": m.get("model_file"), **m["signature"]}}
    elif m.get("kv_cache") == "in_place" and "reset" not in m["methods"]:
        m["methods"] = {**m["methods"], "reset": {"file": m.get("model_file"), **RESET_SIGNATURE}}
    return m


def _ledger_capability(m: dict) -> dict:
    """Before the capability tables: a ledger row's capability is the target's for the requested kind."""
    rows = (m.get("compression") or {}).get("ledger") or []
    if any("capability" not in r for r in rows):
        from edgekit.targets import REJECTED, target_info

        table = target_info(m["target"]).compressed
        m["compression"] = {**m["compression"], "ledger": [
            r if "capability" in r or "requested" not in r
            else {**r, "capability": table.get(r["requested"]["kind"], REJECTED)}
            for r in rows]}
    return m


LAYOUT_STEPS: tuple[Callable[[dict], dict], ...] = (_methods_listed, _ledger_capability)
# schema_version N -> the function that turns an N document into an N+1 one (none yet: 1 is the first).
MIGRATIONS: dict[int, Callable[[dict], dict]] = {}


def migrate(d: dict, source: str = "manifest") -> dict:
    """A copy of manifest JSON ``d`` in the current layout; refuses versions this edgekit cannot read."""
    version = d.get("schema_version")
    readable = isinstance(version, int) and (version == SCHEMA_VERSION or version in MIGRATIONS)
    if not readable:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        raise EdgekitError(
            "manifest_version",
            f"{source} has schema_version {version!r}; this edgekit reads {SCHEMA_VERSION}"
            + (f" and older ({', '.join(map(str, sorted(MIGRATIONS)))})" if MIGRATIONS else ""),
            fix="upgrade edgekit to read it" if newer else "re-export the model with this edgekit version",
            details={"schema_version": version, "reads": SCHEMA_VERSION})
    m = dict(d)
    try:
        while m["schema_version"] != SCHEMA_VERSION:
            m = MIGRATIONS[m["schema_version"]](m)
        for step in LAYOUT_STEPS:
            m = step(m)
    except _MALFORMED as e:
        raise _invalid(source, e) from e
    return m


_MALFORMED = (KeyError, TypeError, ValueError, AttributeError)


def _invalid(source: str, e: Exception) -> EdgekitError:
    return EdgekitError("manifest_invalid", f"{source} is not a valid edgekit manifest: {type(e).__name__}: {e}",
                        fix="re-export the model with this edgekit version", details={"source": source})
