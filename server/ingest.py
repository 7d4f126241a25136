"""From a streamed upload to a stored artifact: sniff, unpack, validate in a child, commit (R2-R4).

A rejected upload leaves no file and no row: everything happens in a staging
directory that is renamed into the store only after validation passed, and the
DB row is written last.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import zipfile
from pathlib import Path, PurePosixPath

from edgekit.server import sandbox
from edgekit.server.archive import extract
from edgekit.server.db import Database, new_id
from edgekit.server.errors import ApiError
from edgekit.server.settings import Settings
from edgekit.server.sniff import FORMATS, SUFFIX_FORMATS, claimed_format, sniff_file
from edgekit.server.store import Store
from edgekit.server.upload import Upload

from edgekit.artifact import MANIFEST_NAME, REFERENCE_IO_NAME, sha256_of
from edgekit.errors import EdgekitError
from edgekit.targets import TARGET_NAMES, TARGETS

EXTENSIONS = {t.name: t.suffix for t in TARGETS if not t.bundle}  # formats uploaded as one bare file
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt")
_commit_lock = threading.Lock()


def ingest(upload: Upload, settings: Settings, db: Database, store: Store) -> tuple[dict, bool]:
    """Store ``upload`` and return (artifact row, created); an identical upload returns the existing row."""
    staged: Path | None = None
    try:
        existing = db.artifact_by_sha(upload.sha256)
        if existing:
            return existing, False
        fmt = _check_format(upload)
        staged = store.staging()
        fmt, model_rel, has_ref = _stage(upload, fmt, staged, settings)
        # Hashed before the validator (user code) runs: if it writes into the tree, every job will refuse it.
        tree_sha = sha256_of(staged / model_rel)
        layout = "dir" if (staged / model_rel).is_dir() else "file"
        validation = _validate(staged / model_rel, fmt, settings)
        with _commit_lock:
            existing = db.artifact_by_sha(upload.sha256)
            if existing:
                return existing, False
            store.commit(staged, upload.sha256)
            staged = None
            row = {"id": new_id("art"), "sha256": upload.sha256, "format": fmt,
                   "layout": layout,
                   "filename": upload.filename, "bytes": upload.size, "tree_sha256": tree_sha,
                   "model_path": model_rel, "signature": validation.pop("signature"),
                   "has_reference": int(has_ref), "validation": validation}
            try:
                db.insert_artifact(row)
            except Exception:
                store.remove(upload.sha256)
                raise
        return db.artifact(row["id"]), True
    finally:
        upload.discard()
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)


def _check_format(upload: Upload) -> str:
    sniffed = sniff_file(upload.path)
    claim = claimed_format(upload.filename, upload.fields.get("format"))
    if claim is not None and claim not in FORMATS:
        raise ApiError(422, "unknown_format", f"format {claim!r} unknown; choose one of {', '.join(FORMATS)}",
                       {"value": claim, "choices": list(FORMATS)})
    if sniffed == "pickle":
        raise ApiError(415, "pickle_refused", "the upload is a Python pickle; loading one runs arbitrary code (R3)",
                       {"fix": "export the model with `edgekit export` and upload the artifact"})
    if sniffed is None:
        raise ApiError(415, "unknown_format",
                       "the bytes are none of the formats this server takes (TFLite, ExecuTorch .pte, ONNX, a "
                       "zipped .mlpackage or a zipped edgekit artifact directory)",
                       {"claimed": claim, "filename": upload.filename})
    if claim is not None:
        is_zip_claim = claim in ("edgekit", "coreml")
        if (sniffed == "zip") != is_zip_claim or (sniffed != "zip" and sniffed != claim):
            raise ApiError(415, "format_mismatch", f"the upload claims to be {claim} but its bytes are {sniffed}",
                           {"claimed": claim, "sniffed": sniffed, "filename": upload.filename,
                            "fix": "upload the right file, or name it with its format's suffix"})
    return sniffed


def _stage(upload: Upload, fmt: str, staged: Path, settings: Settings) -> tuple[str, str, bool]:
    """Fill ``staged``; return (format, model path relative to it, has reference inputs)."""
    if fmt != "zip":
        name = "model" + EXTENSIONS[fmt]
        shutil.copyfile(upload.path, staged / name)
        return fmt, name, False
    root = staged / "artifact"
    root.mkdir()
    try:
        names = extract(upload.path, root, max_entries=settings.max_archive_entries,
                        max_bytes=settings.max_archive_bytes)
    except EdgekitError as e:
        raise ApiError.from_edgekit(422, e) from e
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
        raise ApiError(422, "archive_invalid", f"the zip archive is damaged: {e}") from e
    for n in names:
        if n.lower().endswith(_PICKLE_SUFFIXES):
            raise ApiError(422, "pickle_refused", f"archive entry {n!r} looks like a pickle or torch checkpoint; "
                           "pickles run code when loaded (R3)", {"entry": n})
    return _classify_tree(root, names)


def _classify_tree(root: Path, names: list[str]) -> tuple[str, str, bool]:
    manifests = [n for n in names if PurePosixPath(n).name == MANIFEST_NAME]
    top = [n for n in manifests if len(PurePosixPath(n).parts) <= 2]
    if top:  # an edgekit artifact directory, zipped as is or inside one folder
        rel = PurePosixPath(top[0]).parent
        art_dir = root / rel
        try:
            manifest = json.loads((art_dir / MANIFEST_NAME).read_text())
            target, model_file = manifest["target"], manifest["model_file"]
        except (ValueError, KeyError, TypeError) as e:
            raise ApiError(422, "manifest_invalid", f"{MANIFEST_NAME} is not an edgekit manifest: {e}") from e
        if target not in TARGET_NAMES:
            raise ApiError(422, "manifest_invalid", f"manifest target {target!r} unknown",
                           {"value": target, "choices": list(TARGET_NAMES)})
        model = PurePosixPath(str(model_file))
        if model.is_absolute() or ".." in model.parts or not (art_dir / model).exists():
            raise ApiError(422, "manifest_invalid", f"manifest model_file {model_file!r} is not in the archive")
        if target != "coreml":
            sniffed = sniff_file(art_dir / model)
            if sniffed != target:
                raise ApiError(415, "format_mismatch", f"manifest says {target} but {model_file} is {sniffed}",
                               {"claimed": target, "sniffed": sniffed})
        return target, str(PurePosixPath("artifact") / rel), (art_dir / REFERENCE_IO_NAME).is_file()
    packages = {PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts[0].endswith(".mlpackage")}
    if len(packages) == 1 and any(PurePosixPath(n).name == "Manifest.json" for n in names):
        return "coreml", f"artifact/{packages.pop()}", False
    raise ApiError(422, "archive_unrecognised", "the zip is neither an edgekit artifact directory (manifest.json) "
                   "nor one .mlpackage (Manifest.json)", {"entries": names[:20]})


def _validate(model_path: Path, fmt: str, settings: Settings) -> dict:
    """Load the model in a sandboxed child; a crash or parse error rejects the upload with 422."""
    result_file = model_path.parent / ".validation.json" if model_path.is_file() else \
        model_path.parent / f".{model_path.name}.validation.json"
    outcome = sandbox.run(
        [sys.executable, "-m", "edgekit.server.validate_child", str(model_path), fmt, str(result_file)],
        env=child_env(1), limits=child_limits(settings), timeout_s=settings.validate_timeout_s,
        stderr_bytes=settings.stderr_bytes)
    try:
        if outcome.timed_out:
            raise ApiError(422, "artifact_invalid", f"loading the {fmt} model did not finish in "
                           f"{settings.validate_timeout_s:.0f} s", {"phase": "validate"})
        if outcome.signal is not None:
            raise ApiError(422, "artifact_invalid", f"the {fmt} runtime crashed loading this file "
                           f"({outcome.signal_name})", {"signal": outcome.signal_name,
                                                        "stderr": outcome.stderr[-2000:]})
        if not result_file.exists():
            raise ApiError(422, "artifact_invalid", f"the validator exited with code {outcome.exit_code} "
                           "without a verdict", {"stderr": outcome.stderr[-2000:]})
        verdict = json.loads(result_file.read_text())
    finally:
        result_file.unlink(missing_ok=True)
    if "error" in verdict:
        raise ApiError(422, "artifact_invalid", f"the {fmt} runtime rejects this file: "
                       f"{verdict['error']['message']}", {"runtime_code": verdict["error"]["code"]})
    return verdict


def child_env(threads: int) -> dict[str, str]:
    """A small, explicit environment for children: no secrets (the token) leak into user code."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(OMP_NUM_THREADS=str(threads), PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    return env


def child_limits(settings: Settings) -> sandbox.Limits:
    return sandbox.Limits(mem_mb=settings.child_mem_mb, cpu_s=settings.child_cpu_s,
                          fsize_mb=settings.child_fsize_mb, nofile=settings.child_nofile)


__all__ = ["SUFFIX_FORMATS", "child_env", "child_limits", "ingest"]
