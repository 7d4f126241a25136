"""edgekit.runtime: sessions for every format, input checking, clear errors."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from conftest import needs_export
from edgekit import runtime
from edgekit.errors import EdgekitError, InputMismatch

pytestmark = needs_export


@pytest.mark.parametrize("target", ["executorch", "tflite", "onnx"])
def test_session_reproduces_reference_outputs(tiny_artifacts, target):
    from edgekit.artifact import load_artifact

    art = load_artifact(tiny_artifacts[target])
    ins, outs = art.reference_io()
    session = runtime.load(art.path, threads=1)
    (logits,) = session.run(ins)  # by name
    np.testing.assert_allclose(logits, outs["output_0"], rtol=1e-4, atol=1e-5)
    (again,) = session.run([ins["image"]])  # positional
    np.testing.assert_array_equal(logits, again)
    (bare,) = runtime.load(art.model_file).run(ins["image"])  # the model file alone works too
    np.testing.assert_array_equal(bare, logits)


@pytest.mark.parametrize("target", ["executorch", "tflite", "onnx"])
def test_wrong_shape_states_expected_and_given(tiny_artifacts, target):
    session = runtime.load(tiny_artifacts[target])
    with pytest.raises(InputMismatch) as err:
        session.run([np.zeros((1, 3, 28, 28), np.float32)])
    assert "expected shape (1, 3, 32, 32), given (1, 3, 28, 28)" in err.value.message
    with pytest.raises(InputMismatch, match="expected dtype float32, given float64"):
        session.run([np.zeros((1, 3, 32, 32))])
    with pytest.raises(EdgekitError, match=r"unknown input name\(s\) \['img'\]"):
        session.run({"img": np.zeros((1, 3, 32, 32), np.float32)})


@pytest.mark.skipif(platform.system() == "Darwin", reason="on macOS Core ML predicts; see test_coreml_predicts_on_macos")
def test_coreml_prediction_needs_macos(tiny_artifacts):
    with pytest.raises(EdgekitError) as err:
        runtime.load(tiny_artifacts["coreml"])
    assert err.value.code == "coreml_needs_macos" and "macOS" in err.value.message
    probe = runtime.available_runtimes()["coreml"]
    assert probe["available"] is False and "macOS" in probe["reason"]


@pytest.mark.skipif(platform.system() != "Darwin", reason="Core ML prediction needs macOS")
def test_coreml_predicts_on_macos(tiny_artifacts):
    from edgekit.artifact import load_artifact

    art = load_artifact(tiny_artifacts["coreml"])
    ins, outs = art.reference_io()
    (logits,) = runtime.load(art.path).run(ins)
    cos = float(np.dot(logits.ravel(), outs["output_0"].ravel())
                / np.linalg.norm(logits) / np.linalg.norm(outs["output_0"]))
    assert cos > 0.999  # fp16 compute precision


def test_unknown_paths_and_formats(tmp_path):
    with pytest.raises(EdgekitError, match="does not exist"):
        runtime.load(tmp_path / "nope")
    (tmp_path / "model.bin").write_bytes(b"xx")
    with pytest.raises(EdgekitError, match="cannot tell the format"):
        runtime.load(tmp_path / "model.bin")
