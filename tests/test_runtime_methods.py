"""Multi-method artifacts: every artifact lists its methods; sessions run them by name, torch-free."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import needs_export
from edgekit import runtime
from edgekit.artifact import MethodSpec, load_artifact, method_specs
from edgekit.errors import EdgekitError, InputMismatch

BLOCK_TORCH = "import sys; sys.modules['torch'] = None  # any `import torch` now raises ImportError\n"


def test_old_manifests_derive_their_methods():
    sig = {"inputs": [{"name": "image", "shape": [1, 3, 8, 8], "dtype": "float32"}],
           "outputs": [{"name": "output_0", "shape": [1, 10], "dtype": "float32"}]}
    (fwd,) = method_specs({"signature": sig, "model_file": "model.onnx"}).values()
    assert fwd == MethodSpec.from_json("forward", {**sig, "file": "model.onnx"})
    llm = {"kv_cache": "in_place", "model_file": "model.pte", "signature": sig,
           "methods": {"prefill": {"file": "model.pte", **sig}, "decode": {"file": "model.pte", **sig}}}
    specs = method_specs(llm)
    assert list(specs) == ["prefill", "decode", "reset"]  # a .pte written before `reset` was listed
    assert specs["reset"].inputs[0].shape == (1,) and specs["reset"].file == "model.pte"
    assert MethodSpec.from_json("x", specs["decode"].to_json() | {}) == MethodSpec("x", *[
        getattr(specs["decode"], f) for f in ("inputs", "outputs", "file")])


@needs_export
@pytest.mark.parametrize("target", ["onnx", "tflite", "executorch"])
def test_classifier_is_one_forward_method(tiny_artifacts, target, tmp_path):
    art = load_artifact(tiny_artifacts[target])
    assert list(art.manifest["methods"]) == ["forward"]
    ins, _ = art.reference_io()
    session = runtime.load(art.path, threads=1)
    assert list(session.methods) == ["forward"] and session.methods["forward"].inputs == tuple(session.inputs)
    (y,) = session.run(ins)
    np.testing.assert_array_equal(session.method("forward").run(ins)[0], y)
    with pytest.raises(EdgekitError, match="method 'decode' unknown; choose one of forward"):
        session.method("decode")
    # a manifest from before the methods list loads and runs the same
    old = tmp_path / "old"
    shutil.copytree(art.path, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["methods"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    again = runtime.load(old, threads=1)
    assert list(again.methods) == ["forward"]
    np.testing.assert_array_equal(again.method("forward").run(ins)[0], y)


@needs_export
@pytest.mark.parametrize("target", ["onnx", "tflite"])
def test_llm_methods_by_name(tiny_llm_artifacts, target):
    session = runtime.load(tiny_llm_artifacts[target], threads=1)
    assert list(session.methods) == ["prefill", "decode"]
    with pytest.raises(EdgekitError, match="has 2 methods .*run\\(\\) needs one") as err:
        session.run([np.zeros((1, 1), np.int64)])
    assert err.value.code == "multi_method"
    decode = session.method("decode")
    assert [t.name for t in decode.inputs] == ["tokens", "start_pos", "k_cache", "v_cache"]
    k = np.zeros(decode.inputs[2].shape, np.float32)
    logits, k1, v1 = decode.run([np.array([[5]], np.int64), np.array([0], np.int64), k, k.copy()])
    assert logits.shape == (1, 1, 300) and np.isfinite(logits).all()
    assert np.abs(k1[:, :, :, 0]).sum() > 0 and np.abs(k1[:, :, :, 1:]).sum() == 0  # row 0 written, only
    prefill = session.method("prefill")
    with pytest.raises(InputMismatch, match="expected shape \\(1, 8\\), given \\(1, 1\\)"):
        prefill.run([np.array([[5]], np.int64), np.array([0], np.int64), k, k])
    padded = np.zeros((1, 8), np.int64)
    padded[0, 0] = 5
    (pl, _, _) = prefill.run([padded, np.array([0], np.int64), k, k])
    np.testing.assert_allclose(pl[0, 0], logits[0, 0], atol=1e-4)  # same first token, same logits


@needs_export
@pytest.mark.parametrize("target", ["onnx", "tflite"])
def test_generate_cli_without_torch(tiny_llm_artifacts, target):
    """`edgekit generate` end to end in a process where `import torch` fails."""
    code = BLOCK_TORCH + (
        "from edgekit.cli import main\n"
        f"rc = main(['generate', {str(tiny_llm_artifacts[target])!r}, '--prompt', 'The for statement',\n"
        "            '--max-new-tokens', '6', '--temperature', '0'])\n"
        "assert 'torch' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "sys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("The for statement") and len(proc.stdout.strip()) > len("The for statement")
    assert "tok/s decode" in proc.stderr and f"{target}, 1 thread(s)" in proc.stderr


@needs_export
@pytest.mark.parametrize("target", ["onnx", "executorch"])
def test_bare_model_file_has_one_forward_method(tiny_artifacts, target, tmp_path):
    art = load_artifact(tiny_artifacts[target])
    ins, outs = art.reference_io()
    session = runtime.load(shutil.copy(art.model_file, tmp_path / f"bare{art.model_file.suffix}"))
    assert session.manifest is None and list(session.methods) == ["forward"]
    assert [t.shape for t in session.methods["forward"].inputs] == [(1, 3, 32, 32)]
    (y,) = session.method("forward").run([ins["image"]])
    np.testing.assert_allclose(y, outs["output_0"], rtol=1e-4, atol=1e-5)
