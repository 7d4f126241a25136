"""The app-side runtime a bundle needs, at the version that matches the exporter of the artifact.

Every rule here cites where it comes from, and says when it is a convention rather than a fact
checked for this exact version: no package registry of the phone platforms (Maven Central,
Google Maven, GitHub) is reachable when a bundle is made, so the README repeats the caveat.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from dataclasses import dataclass

from edgekit.artifact import Artifact

# ai-edge-litert (the LiteRT runtime that checked parity at export) for each litert-torch release that
# edgekit pins together in constraints.txt; the Android AAR com.google.ai.edge.litert:litert carries the same
# release number as the Python wheel (LiteRT 2.3.0 ships both).
LITERT_FOR_LITERT_TORCH = {"0.10.0": "2.3.0"}
EXECUTORCH_SWIFTPM_URL = "https://github.com/pytorch/executorch.git"


@dataclass(frozen=True)
class Dependency:
    system: str  # gradle | swiftpm | system
    name: str  # Gradle coordinate without version, SwiftPM package URL, or framework name
    version: str | None  # None: not known; the README says what to pick
    source: str  # where the version comes from
    caveat: str | None = None  # what could not be checked here
    products: tuple[str, ...] = ()  # SwiftPM products to link

    @property
    def coordinate(self) -> str:
        return f"{self.name}:{self.version or 'VERSION'}"


def release(version: str | None) -> str | None:
    """`1.5.1+cpu` -> `1.5.1`: the release number, without a local build tag."""
    if not version:
        return None
    m = re.match(r"\d+(\.\d+)*", version)
    return m.group(0) if m else None


def executorch_version(artifact: Artifact) -> str | None:
    return release(artifact.manifest.get("producer", {}).get("executorch"))


def litert_version(artifact: Artifact) -> tuple[str | None, str]:
    producer = artifact.manifest.get("producer", {})
    if producer.get("ai-edge-litert"):
        return release(producer["ai-edge-litert"]), "ai-edge-litert in the manifest's producer"
    lt = release(producer.get("litert-torch"))
    if lt in LITERT_FOR_LITERT_TORCH:
        return LITERT_FOR_LITERT_TORCH[lt], (f"the LiteRT release edgekit pins with litert-torch {lt} "
                                             "(the converter in the manifest's producer) and checks parity with")
    try:
        return release(md.version("ai-edge-litert")), "the ai-edge-litert installed where the bundle was made"
    except md.PackageNotFoundError:
        return None, "not recorded in the manifest"


def android_dependencies(artifact: Artifact) -> list[Dependency]:
    if artifact.target == "executorch":
        v = executorch_version(artifact)
        return [Dependency(
            "gradle", "org.pytorch:executorch-android", v,
            f"executorch {v} in the manifest's producer (the exporter of this .pte); the ExecuTorch AAR is "
            "published to Maven Central under its release's number (e.g. 1.0.0 for ExecuTorch 1.0.0)",
            caveat=(f"not resolved against Maven Central when this bundle was made; if {v} is not published, use "
                    "the newest published AAR of the same minor release and re-run the phone check")
            if v else "the manifest records no executorch version: use the AAR of the ExecuTorch that exported it")]
    v, why = litert_version(artifact)
    return [Dependency(
        "gradle", "com.google.ai.edge.litert:litert", v, why,
        caveat=("not resolved against Google Maven when this bundle was made; the AAR's minSdk is set by "
                "that release (24 for LiteRT 2.3.0)") if v else
        "no LiteRT version is recorded: use the LiteRT release the artifact was verified with")]


def ios_dependencies(artifact: Artifact) -> list[Dependency]:
    if artifact.target == "coreml":
        return [Dependency("system", "CoreML", None,
                           f"system framework; the package targets {deployment_target(artifact)} "
                           f"(coremltools {artifact.manifest.get('producer', {}).get('coremltools', '?')} wrote it)")]
    v = executorch_version(artifact)
    return [Dependency(
        "swiftpm", EXECUTORCH_SWIFTPM_URL, f"swiftpm-{v}" if v else None,
        f"executorch {v} in the manifest's producer; ExecuTorch's prebuilt Swift packages live on branches "
        "named swiftpm-<version> of its repository",
        caveat="the branch was not resolved when this bundle was made; the package needs iOS 17 / macOS 14 and "
               "the linker flag -all_load (backends and kernels register themselves at load)",
        products=executorch_products(artifact))]


def executorch_products(artifact: Artifact) -> tuple[str, ...]:
    """The ExecuTorch SwiftPM products the .pte needs: the runtime, its delegate, kernels for the rest."""
    m = artifact.manifest
    info = m.get("target_info", {}).get("delegation", {})
    products = ["executorch"]
    backends = {info["backend"]} if info.get("backend") else pte_backends(artifact.model_file)
    products += [BACKEND_PRODUCTS[b] for b in sorted(backends) if b in BACKEND_PRODUCTS]
    products.append("kernels_optimized")  # generic CPU kernels: every op left outside the delegate
    if any("quantized" in op for op in info.get("portable_ops") or {}):
        products.append("kernels_quantized")
    return tuple(products)


BACKEND_PRODUCTS = {"XnnpackBackend": "backend_xnnpack", "CoreMLBackend": "backend_coreml"}


def pte_backends(path) -> set[str]:
    """Delegate ids named in a .pte (the program stores each delegate's backend id as a string), for
    manifests that do not record the delegation (LLM exports)."""
    names = {n.encode(): n for n in BACKEND_PRODUCTS}
    found: set[str] = set()
    tail = b""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            window = tail + chunk
            found |= {n for b, n in names.items() if b in window}
            tail = window[-32:]
    return found


def deployment_target(artifact: Artifact) -> str:
    """The oldest iOS the Core ML package loads on (multifunction packages need iOS 18)."""
    m = artifact.manifest
    if m.get("kind") == "edgekit-llm" or len(m.get("methods") or {}) > 1:
        return "iOS18"
    return m.get("options", {}).get("minimum_deployment_target", "iOS17")


def uses_edgekit_kernels(artifact: Artifact) -> bool:
    return artifact.manifest.get("options", {}).get("kernels") in ("edgekit", "edgekit-q8")
