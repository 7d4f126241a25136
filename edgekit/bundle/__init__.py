"""`edgekit bundle`: an app-integration folder for Android or iOS, generated from an artifact's manifest.

    from edgekit.bundle import bundle
    result = bundle("out/resnet18/executorch", "android", "out/bundles/resnet18-android")

writes the model files (copied, sha256 checked against the manifest), a typed wrapper (Kotlin for
Android, Swift for iOS), the runtime dependency at the version matching the exporter, and a README.
The folder is written beside ``out`` and renamed into place, so a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from edgekit.artifact import REFERENCE_IO_NAME, load_artifact, sha256_of, staging_dir
from edgekit.errors import EdgekitError
from edgekit.targets import TARGETS

PLATFORMS = ("android", "ios")
# what each platform's wrapper runs: artifact target -> runtime
RUNS = {p: {t.name: t.app_runtime for t in TARGETS if p in t.platforms} for p in PLATFORMS}
SUFFIX = {t.name: t.suffix for t in TARGETS}
DEFAULT_PACKAGE = "edgekit.bundle"


@dataclass
class BundleResult:
    path: Path
    platform: str
    target: str
    class_name: str
    wrapper: Path  # the generated Kotlin/Swift source
    files: list[str]  # model files copied, relative to path
    summary: dict  # what bundle.json holds


def check_platform(platform: str, target: str, artifact_path: Path, kind: str = "edgekit-artifact") -> None:
    if platform not in PLATFORMS:
        raise EdgekitError("unknown_platform", f"platform {platform!r} unknown; choose one of {', '.join(PLATFORMS)}",
                           fix="pass --platform android or --platform ios", details={"value": platform})
    if target not in RUNS[platform]:
        runnable = ", ".join(f"{t} ({SUFFIX[t]}, {r})" for t, r in RUNS[platform].items())
        other = [p for p in PLATFORMS if target in RUNS[p]]
        hint = f"bundle it for --platform {other[0]}, or " if other else ""
        raise EdgekitError(
            "bundle_target_unsupported",
            f"{artifact_path} is an artifact of target {target} ({SUFFIX.get(target, target)}), which the "
            f"{platform} bundle cannot run; {platform} bundles take {runnable}",
            fix=f"{hint}export the model for {platform} first, e.g. `edgekit "
                f"{'export-llm CHECKPOINT' if kind == 'edgekit-llm' else 'export MODEL'} --target "
                f"{next(iter(RUNS[platform]))}`, and bundle that artifact",
            details={"target": target, "platform": platform, "choices": list(RUNS[platform])})


def _check_package(package: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*", package):
        raise EdgekitError("bad_package_name", f"Kotlin package {package!r} is not a dotted lower-case name",
                           fix="pass --package like com.example.app.ml")


def bundle(artifact: str | os.PathLike, platform: str, out: str | os.PathLike, *, package: str = DEFAULT_PACKAGE,
           class_name: str | None = None) -> BundleResult:
    """Write the integration folder for ``platform`` at ``out`` (replaced if it exists)."""
    from edgekit.bundle import boundary, deps as deps_mod
    from edgekit.bundle.readme import readme
    from edgekit.bundle.spec import build_plan

    art = load_artifact(artifact)
    check_platform(platform, art.target, art.path, art.manifest.get("kind", "edgekit-artifact"))
    if platform == "android":
        _check_package(package)
    out = Path(out)
    if out.resolve() == art.path.resolve() or art.path.resolve() in out.resolve().parents:
        raise EdgekitError("bundle_inside_artifact", f"--out {out} is inside the artifact {art.path}",
                           fix="write the bundle to a folder outside the artifact directory")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "bundle.json").is_file())):
        raise EdgekitError("bundle_out_exists", f"--out {out} exists and is not an edgekit bundle; it would be replaced",
                           fix="pass a new folder (or an earlier bundle's folder, which is replaced whole)")
    found = boundary.probe(art)
    plan = build_plan(art, found if found is not None else boundary.assumed(art), found is not None, class_name)
    deps = deps_mod.android_dependencies(art) if platform == "android" else deps_mod.ios_dependencies(art)
    # everything the app needs from the artifact: the model and side files such as the tokenizer
    files = [f for f in art.manifest["files"] if f["path"] != REFERENCE_IO_NAME]
    if platform == "android":
        from edgekit.bundle.kotlin import gradle_snippet, kotlin_source

        source = kotlin_source(plan, package)  # before any file is written: dtype errors leave nothing behind
        wrapper_rel = Path("src/main/java", *package.split("."), f"{plan.class_name}.kt")
        files_dir = Path("src/main/assets")
        extra = {"dependencies.gradle.kts": gradle_snippet(deps)}
    else:
        from edgekit.bundle.swift import package_swift, swift_source

        source = swift_source(plan)
        wrapper_rel = Path("Sources", plan.class_name, f"{plan.class_name}.swift")
        files_dir = Path("Sources", plan.class_name)
        extra = {"Package.swift": package_swift(plan, deps, deps_mod.deployment_target(art))}
    summary = _summary(plan, platform, deps, [str(files_dir / f["path"]) for f in files], str(wrapper_rel))
    with staging_dir(out) as stage:
        for f in files:
            dest = stage / files_dir / f["path"]
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = art.path / f["path"]
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest)
            got = sha256_of(dest)
            if got != f["sha256"]:
                raise EdgekitError(
                    "bundle_sha256_mismatch",
                    f"{src} has sha256 {got[:16]}..., the manifest records {f['sha256'][:16]}...: the artifact "
                    "changed after export", fix="re-export the artifact (edgekit export) and bundle it again",
                    details={"file": f["path"], "sha256": got, "expected": f["sha256"]})
        (stage / wrapper_rel).parent.mkdir(parents=True, exist_ok=True)
        (stage / wrapper_rel).write_text(source)
        for name, text in extra.items():
            (stage / name).write_text(text)
        shutil.copy2(art.path / "manifest.json", stage / "manifest.json")
        from edgekit.bundle.reference import write_reference

        reference = write_reference(art, stage / "reference")
        summary["reference"] = reference is not None
        (stage / "README.md").write_text(readme(plan, platform, deps, [f["path"] for f in files],
                                                package if platform == "android" else None, reference))
        (stage / "bundle.json").write_text(json.dumps(summary, indent=2))
    return BundleResult(out, platform, art.target, plan.class_name, out / wrapper_rel,
                        [str(files_dir / f["path"]) for f in files], summary)


def _summary(plan, platform: str, deps, files: list[str], wrapper: str) -> dict:
    """bundle.json: what was generated, for tools and tests (the wrapper itself is the API)."""
    return {
        "platform": platform, "target": plan.target, "class_name": plan.class_name, "wrapper": wrapper,
        "files": files, "boundary_probed": plan.probed,
        "dependencies": [{"system": d.system, "name": d.name, "version": d.version, "source": d.source,
                          "caveat": d.caveat, "products": list(d.products)} for d in deps],
        "methods": {m.name: {"function": m.ident, "key": m.io_key, "params": list(m.params),
                             "inputs": [_tensor(t) for t in m.inputs], "outputs": [_tensor(t) for t in m.outputs]}
                    for m in plan.methods},
    }


def _tensor(t) -> dict:
    return {"name": t.name, "ident": t.ident, "shape": t.shape, "dtype": t.dtype,
            "io_name": t.io_name, "io_dtype": t.io_dtype}
