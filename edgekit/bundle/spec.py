"""The platform-neutral plan of a bundle: what the wrapper exposes, read from manifest.json.

Every name, shape and dtype a wrapper shows comes from the artifact's manifest
(``edgekit.artifact.method_specs``). What the model file itself calls a tensor
(``args_0`` in a .tflite, ``x`` in an .mlpackage) and the type it takes at its
boundary (litert-torch and Core ML narrow int64 inputs to int32) are read from
the file by ``boundary.py`` and kept beside the manifest's view, so the wrapper
can convert at the edge while its API stays the manifest's.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

from edgekit.artifact import Artifact, TensorSpec, method_specs
from edgekit.errors import EdgekitError


@dataclass(frozen=True)
class Dim:
    """One axis: a concrete size, or a parameter the caller passes (a symbolic or unknown dim)."""

    size: int | None
    param: str | None = None  # identifier of the run-time parameter when size is None
    symbol: str | None = None  # the manifest's name for a symbolic dim


@dataclass(frozen=True)
class Tensor:
    name: str  # the manifest's name (the wrapper's API name)
    ident: str  # a camelCase identifier for Kotlin/Swift
    dims: tuple[Dim, ...]
    dtype: str  # the manifest's dtype (numpy name)
    io_name: str  # the model file's own name for this tensor
    io_dtype: str  # the dtype the model file takes/gives at its boundary

    @property
    def shape(self) -> list[int | str | None]:
        return [d.size if d.size is not None else (d.symbol or None) for d in self.dims]

    @property
    def static(self) -> bool:
        return all(d.size is not None for d in self.dims)

    def numel(self) -> int | None:
        n = 1
        for d in self.dims:
            if d.size is None:
                return None
            n *= d.size
        return n


@dataclass(frozen=True)
class Method:
    name: str  # the manifest's method name (the .pte method, .tflite signature, .mlpackage function)
    ident: str  # the wrapper's function name
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    io_key: str  # what the model file calls this method (tflite signature key, Core ML function)
    params: tuple[str, ...] = ()  # run-time dimension parameters, in first-use order

    @property
    def outputs_class(self) -> str:
        """The wrapper's type holding this method's outputs (``run`` -> ``RunOutputs``)."""
        return self.ident[0].upper() + self.ident[1:] + "Outputs"

    def check_dtypes(self, plan: Plan, supported, platform: str, accepts=None) -> None:
        """Raise ``bundle_unsupported_dtype`` for the first tensor the ``platform`` wrapper cannot pass
        (``accepts(tensor)``, default: its dtype is in ``supported``)."""
        for t in (*self.inputs, *self.outputs):
            if not (accepts(t) if accepts else t.dtype in supported):
                raise EdgekitError(
                    "bundle_unsupported_dtype",
                    f"{plan.target} tensor '{t.name}' has dtype {t.dtype} (file: {t.io_dtype}), which the {platform} "
                    f"wrapper cannot pass; supported: {', '.join(sorted(supported))}",
                    fix="export the model with inputs/outputs of a supported dtype (e.g. float32 or int32)",
                    details={"tensor": t.name, "dtype": t.dtype, "io_dtype": t.io_dtype})


@dataclass
class Plan:
    artifact: Artifact
    class_name: str
    methods: list[Method]
    probed: bool  # boundary names/dtypes read from the model file (else assumed; the README says so)
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.artifact.manifest.get("kind", "edgekit-artifact")

    @property
    def target(self) -> str:
        return self.artifact.target


def camel(name: str, upper: bool = False) -> str:
    """A Kotlin/Swift identifier: `output_0` -> `output0`, `k_cache` -> `kCache`, `resnet_tiny` -> `ResnetTiny`."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    if not parts:
        parts = ["value"]
    words = [parts[0][0].upper() + parts[0][1:] if upper else parts[0][0].lower() + parts[0][1:]]
    words += [p[0].upper() + p[1:] for p in parts[1:]]
    ident = "".join(words)
    if ident[0].isdigit():
        ident = ("M" if upper else "m") + ident
    if keyword.iskeyword(ident) or ident in RESERVED:
        ident += "_"
    return ident


# Kotlin and Swift keywords and the names the generated classes use themselves.
RESERVED = {"fun", "val", "var", "class", "object", "in", "is", "as", "when", "typealias", "interface", "func",
            "let", "self", "Self", "init", "deinit", "struct", "enum", "protocol", "extension", "where", "throws",
            "inout", "operator", "internal", "public", "private", "default", "do", "repeat", "guard", "switch",
            "case", "super", "this", "null", "nil", "true", "false", "module", "model", "close", "load",
            "companion", "package", "import", "return", "throw", "try", "catch", "out", "data", "inputs",
            "outputs", "result", "provider", "i", "v", "v32", "b", "n", "ok"}


def _tensor(spec: TensorSpec, io_name: str, io_dtype: str, params: dict[str, str]) -> Tensor:
    dims = []
    ident = camel(spec.name)
    for i, d in enumerate(spec.shape):
        if isinstance(d, int):
            dims.append(Dim(d))
        else:  # a symbolic dim is one parameter for every axis that shares its name; an unknown one is its own
            key = d if isinstance(d, str) else f"{spec.name}#{i}"
            if key not in params:
                params[key] = camel(d) if isinstance(d, str) else f"{ident}Dim{i}"
            dims.append(Dim(None, params[key], d if isinstance(d, str) else None))
    return Tensor(spec.name, ident, tuple(dims), spec.dtype, io_name, io_dtype)


def build_plan(artifact: Artifact, boundary: dict[str, dict], probed: bool, class_name: str | None = None) -> Plan:
    """The wrapper's view of ``artifact``. ``boundary[method]`` holds the file's own key, names and dtypes
    (``boundary.probe``, or ``boundary.assumed`` when the file could not be read: ``probed`` False)."""
    methods = []
    for name, spec in method_specs(artifact.manifest).items():
        b = boundary.get(name) or {}
        params: dict[str, str] = {}
        ins = tuple(_tensor(t, n, d, params) for t, n, d in
                    zip(spec.inputs, b.get("input_names") or [t.name for t in spec.inputs],
                        b.get("input_dtypes") or [t.dtype for t in spec.inputs]))
        outs = tuple(_tensor(t, n, d, params) for t, n, d in
                     zip(spec.outputs, b.get("output_names") or [t.name for t in spec.outputs],
                         b.get("output_dtypes") or [t.dtype for t in spec.outputs]))
        methods.append(Method(name, camel(name), ins, outs, b.get("key", name), tuple(params.values())))
    idents = [m.ident for m in methods]
    if len(set(idents)) != len(idents):
        raise EdgekitError("bundle_name_clash", f"method names {list(method_specs(artifact.manifest))} map to "
                           f"clashing identifiers {idents}", fix="rename the methods in the export")
    cls = class_name or camel(artifact.manifest["model"]["name"], upper=True)
    if not re.fullmatch(r"[A-Z][A-Za-z0-9_]*", cls):
        raise EdgekitError("bad_class_name", f"class name {cls!r} is not a Kotlin/Swift type name",
                           fix="pass --class-name with a name like MyModel (a capital letter, then letters/digits)")
    return Plan(artifact, cls, methods, probed=probed)
