"""The edgekit_runtime C library through its ctypes binding: outputs, signatures, errors, manifests."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import needs_export

pytestmark = needs_export


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("target", ["executorch", "tflite"])
def test_reference_outputs(tiny_artifacts, native_lib, target):
    from edgekit.artifact import load_artifact
    from edgekit.runtime.native import NativeArtifact

    art = load_artifact(tiny_artifacts[target])
    ins, outs = art.reference_io()
    with NativeArtifact(art.path, threads=1) as nat:
        assert nat.target == target and nat.methods == ["forward"]
        sig_in, sig_out = nat.signature("forward")
        assert sig_in == art.manifest["methods"]["forward"]["inputs"]
        assert [t["name"] for t in sig_out] == [t.name for t in art.outputs]
        y1, = nat.run("forward", [ins["image"]])
        y2, = nat.run("forward", [ins["image"]], names=["image"])
    ref = outs["output_0"]
    assert y1.shape == ref.shape and y1.dtype == np.float32
    assert _cos(y1, ref) >= 0.99999 and float(np.abs(y1 - ref).max()) < 1e-4
    np.testing.assert_array_equal(y1, y2)


def test_input_errors_are_statuses(tiny_artifacts, native_lib):
    from edgekit.runtime.native import NativeArtifact, NativeRuntimeError

    nat = NativeArtifact(tiny_artifacts["executorch"])
    x = np.zeros((1, 3, 32, 32), np.float32)
    cases = {
        "must have shape [1, 3, 32, 32], given [1, 3, 32, 31]": ([x[..., :31].copy()], None),
        "must be float32, given int64": ([x.astype(np.int64)], None),
        "must have rank 4, given 3": ([x[0]], None),
        "unknown input 'img'": ([x], ["img"]),
        "takes 1 input(s), given 2": ([x, x], None),
    }
    for message, (arrays, names) in cases.items():
        with pytest.raises(NativeRuntimeError) as e:
            nat.run("forward", arrays, names=names)
        assert e.value.status == "EK_ERR_INPUT" and message in e.value.message, e.value.message
    with pytest.raises(NativeRuntimeError) as e:
        nat.run("decode", [x])
    assert e.value.status == "EK_ERR_NO_METHOD" and "has: forward" in e.value.message
    assert nat.run("forward", [x])[0].shape == (1, 10)  # still usable after the errors
    nat.close()


def test_manifest_versions(tiny_artifacts, native_lib, tmp_path):
    """New manifests carry min_runtime_version; old ones (no methods, no min_runtime_version) still open."""
    from edgekit.runtime.native import NativeArtifact, NativeRuntimeError, version

    src = tiny_artifacts["tflite"]
    manifest = json.loads((src / "manifest.json").read_text())
    assert manifest["min_runtime_version"] == version() == "0.1.0"
    old = shutil.copytree(src, tmp_path / "old")
    legacy = {k: v for k, v in manifest.items() if k not in ("methods", "min_runtime_version")}
    (old / "manifest.json").write_text(json.dumps(legacy))
    with NativeArtifact(old) as nat:
        assert nat.methods == ["forward"] and nat.signature("forward")[0][0]["name"] == "image"
    (old / "manifest.json").write_text(json.dumps({**manifest, "min_runtime_version": "0.2"}))
    with pytest.raises(NativeRuntimeError) as e:
        NativeArtifact(old)
    assert e.value.status == "EK_ERR_VERSION" and "needs edgekit_runtime >= 0.2" in e.value.message


def test_last_error_is_per_thread(tiny_artifacts, native_lib):
    """Two threads fail at the same time with different messages; each reads its own (ctypes drops the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    from edgekit.runtime.native import NativeArtifact, NativeRuntimeError

    arts = {t: NativeArtifact(tiny_artifacts[t], threads=1) for t in ("executorch", "tflite")}
    wrong = {"executorch": np.zeros((1, 3, 32, 31), np.float32), "tflite": np.zeros((1, 3, 32, 32), np.int32)}
    expect = {"executorch": "dimension 3 must be 32", "tflite": "must be float32, given int32"}

    def fail(target: str) -> bool:
        for _ in range(200):
            try:
                arts[target].run("forward", [wrong[target]])
            except NativeRuntimeError as e:
                if expect[target] not in e.message:
                    return False
        return True

    with ThreadPoolExecutor(2) as pool:
        assert all(pool.map(fail, ["executorch", "tflite"] * 4))
