"""The export targets: the one place that names them, their file suffixes, runtimes and capabilities.

Everything else derives from this table (CLI choices, exporters, runtime sessions,
the server's formats and runtimes, LLM and FiRST support); a test fails when a
package module spells a list of target names itself. Importing it needs nothing
but the standard library, so the torch-free side (runtime, server) uses it too.

    >>> from edgekit.targets import TARGET_NAMES, target_info, target_for_suffix
    >>> TARGET_NAMES
    ('coreml', 'executorch', 'tflite', 'onnx')
    >>> target_info("onnx").suffix, target_for_suffix(".pte").name
    ('.onnx', 'executorch')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from edgekit.errors import UnknownChoice

# How a target stores a compressed weight kind: in its compressed form, decompressed to dense, or not at all.
NATIVE, DECOMPRESSED, REJECTED = "native", "decompressed", "rejected"
# Capabilities beyond the classifier path (which every target has).
LLM = "llm"                    # prefill/decode LLM export (exporters/llm.py + exporters/<target>/llm.py)
FIRST = "first"                # FiRST layer-skipping LLM export (exporters/llm_first.py)
LLM_WEIGHTS = "llm_weights"    # int4/int8 LLM weights (exporters/llm_weights.py)


@dataclass(frozen=True)
class Target:
    """One export target and what edgekit knows about it."""

    name: str                  # the target's name everywhere: CLI --target, manifest "target", server format
    title: str                 # for people
    suffix: str                # the model file's suffix inside an artifact
    bundle: bool               # the "file" is a directory (an .mlpackage); uploads arrive zipped
    session: str               # "module:Class" of its torch-free runtime session
    runtime: str               # the runtime library's name (the server's job field `runtime`)
    converters: tuple[str, ...]   # pip distributions that convert to it (the manifest's producer versions)
    packages: Mapping[str, str]   # every pip distribution it uses -> what for (`edgekit doctor`)
    compressed: Mapping[str, str]  # compressed weight kind -> NATIVE | DECOMPRESSED | REJECTED
    features: frozenset[str] = frozenset({LLM})
    # the opt-in re-quantization that keeps compressed layers small where the target has no table op
    requantize_fix: str | None = None
    platforms: tuple[str, ...] = ()  # phone platforms whose app bundles run it (`edgekit bundle`)
    app_runtime: str = ""            # the runtime an app links to run it, by its product name
    # the environment variable that picks the backend of its session: "native" runs it on edgekit_runtime
    backend_env: str | None = None
    exporter: str = field(init=False)  # module whose EXPORTER converts to it

    def __post_init__(self) -> None:
        object.__setattr__(self, "exporter", f"edgekit.exporters.{self.name}")
        object.__setattr__(self, "packages", MappingProxyType(dict(self.packages)))
        object.__setattr__(self, "compressed", MappingProxyType(dict(self.compressed)))

    def can(self, feature: str) -> bool:
        return feature in self.features


def _kinds(lut: str, shift: str, sparse: str, lut_sparse: str, shift_sparse: str, int8: str) -> dict[str, str]:
    return {"lut": lut, "shift": shift, "sparse": sparse, "lut+sparse": lut_sparse, "shift+sparse": shift_sparse,
            "int8": int8}


_DENSE_TABLES = _kinds(*[DECOMPRESSED] * 5, NATIVE)  # no table op: clustered/shift/sparse weights stored dense

# In the order printed and exported (`edgekit export` with no --target exports them all, in this order).
TARGETS: tuple[Target, ...] = (
    Target("coreml", "Core ML", ".mlpackage", True, "edgekit.runtime.coreml_session:CoreMLSession", "coreml",
           converters=("coremltools",), packages={"coremltools": "Core ML converter"},
           # see exporters/compression/coreml_encode.py
           compressed=_kinds(*[NATIVE] * 6), platforms=("ios",), app_runtime="Core ML"),
    Target("executorch", "ExecuTorch", ".pte", False, "edgekit.runtime.executorch_session:ExecuTorchSession",
           "executorch", converters=("executorch",),
           packages={"executorch": "ExecuTorch: .pte export and runtime"}, compressed=_DENSE_TABLES,
           features=frozenset({LLM, FIRST, LLM_WEIGHTS}),
           requantize_fix="keep them int8 with --executorch-requantize dynamic_int8 (options={'requantize': "
                          "'dynamic_int8'}: int8 per-channel weights, XNNPACK dynamic int8 activations)",
           platforms=("android", "ios"), app_runtime="ExecuTorch", backend_env="EDGEKIT_PTE_BACKEND"),
    Target("tflite", "TFLite/LiteRT", ".tflite", False, "edgekit.runtime.tflite_session:TFLiteSession", "litert",
           converters=("litert-torch",),
           packages={"litert-torch": "TFLite converter", "ai-edge-litert": "TFLite/LiteRT runtime"},
           compressed=_DENSE_TABLES,
           requantize_fix="keep them int8 with --tflite-requantize int8 (options={'requantize': 'int8'}: int8 "
                          "per-channel weights + DEQUANTIZE)",
           platforms=("android",), app_runtime="LiteRT", backend_env="EDGEKIT_TFLITE_BACKEND"),
    Target("onnx", "ONNX", ".onnx", False, "edgekit.runtime.onnx_session:OnnxSession", "onnxruntime",
           converters=("onnx", "onnxscript"),
           packages={"onnx": "ONNX", "onnxscript": "ONNX exporter passes", "onnxruntime": "ONNX Runtime"},
           compressed=_kinds(NATIVE, NATIVE, DECOMPRESSED, NATIVE, NATIVE, NATIVE), app_runtime="ONNX Runtime"),
)
TARGET_NAMES: tuple[str, ...] = tuple(t.name for t in TARGETS)
_BY_NAME = {t.name: t for t in TARGETS}
_BY_SUFFIX = {t.suffix: t for t in TARGETS}
SUFFIXES: tuple[str, ...] = tuple(_BY_SUFFIX)


def target_info(name: str, what: str = "target") -> Target:
    """The target called ``name``; an unknown name is a user error listing the valid ones."""
    if name not in _BY_NAME:
        raise UnknownChoice(what, name, TARGET_NAMES)
    return _BY_NAME[name]


def target_for_suffix(suffix: str) -> Target | None:
    """The target whose model files end in ``suffix`` (".pte", ...), or None."""
    return _BY_SUFFIX.get(suffix)


def names_with(feature: str) -> tuple[str, ...]:
    """The targets with a capability (LLM, FIRST, LLM_WEIGHTS), in table order."""
    return tuple(t.name for t in TARGETS if t.can(feature))


def converter_packages() -> tuple[str, ...]:
    return tuple(d for t in TARGETS for d in t.converters)


__all__ = ["Target", "TARGETS", "TARGET_NAMES", "SUFFIXES", "NATIVE", "DECOMPRESSED", "REJECTED", "LLM", "FIRST",
           "LLM_WEIGHTS", "target_info", "target_for_suffix", "names_with", "converter_packages"]
