"""Five user modules through `edgekit export file.py:function` to all four targets.

Each exports with parity, or fails with an error that names the op, the layer and the target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import needs_export
from edgekit.cli import main

pytestmark = needs_export
USER_FILE = Path(__file__).parent / "fixtures" / "user_models.py"


@pytest.mark.parametrize("function", ["mlp", "audio_cnn", "attention", "two_heads"])
def test_user_module_exports_everywhere_with_parity(function, tmp_path, capsys):
    rc = main(["export", f"{USER_FILE}:{function}", "--out", str(tmp_path), "--parity-samples", "16"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    from edgekit.artifact import load_artifact

    for target in ("executorch", "tflite", "onnx"):
        parity = load_artifact(tmp_path / function / target).manifest["parity"]
        assert parity["ok"] and parity["metrics"]["samples"] == 16, (target, parity)
        assert parity["metrics"]["cosine_min"] >= 0.99999
    assert load_artifact(tmp_path / function / "coreml").manifest["parity"]["mode"] == "structural"
    assert out.count("ok cos") == 3 and "structural ok" in out


def test_two_inputs_two_outputs_signature(tmp_path, capsys):
    assert main(["export", f"{USER_FILE}:two_heads", "--out", str(tmp_path), "--target", "onnx"]) == 0
    from edgekit import runtime
    from edgekit.artifact import load_artifact

    art = load_artifact(tmp_path / "two_heads" / "onnx")
    assert [t["name"] for t in art.manifest["signature"]["inputs"]] == ["image", "meta"]
    assert [t["shape"] for t in art.manifest["signature"]["outputs"]] == [[1, 3], [1, 1]]
    ins, outs = art.reference_io()
    got = runtime.load(art.path).run(ins)
    np.testing.assert_allclose(got[1], outs["output_1"], rtol=1e-5, atol=1e-6)


def test_unsupported_op_names_op_layer_and_target(tmp_path, capsys):
    rc = main(["export", f"{USER_FILE}:spectral", "--out", str(tmp_path), "--parity-samples", "8"])
    out, err = capsys.readouterr()
    assert rc == 1
    for target in ("coreml", "executorch"):
        assert f"target '{target}' cannot convert op 'aten.fft_rfft' in layer 'features.0'" in err
        assert f"drop --target {target}" in err
        assert not (tmp_path / "spectral" / target).exists()  # nothing half-written
    assert "Traceback" not in err
    # the targets that can take the op still export, with parity
    assert (tmp_path / "spectral" / "tflite" / "manifest.json").exists()
    assert (tmp_path / "spectral" / "onnx" / "manifest.json").exists()
    assert out.count("ok cos") == 2


def test_reserved_submodule_name_gets_a_fix(tmp_path):
    import torch

    import edgekit
    from edgekit.errors import EdgekitError

    class Bad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.meta = torch.nn.Linear(4, 2)  # `meta` shadows a GraphModule attribute

        def forward(self, x):
            return self.meta(x)

    with pytest.raises(EdgekitError) as err:
        edgekit.export(Bad().eval(), (np.ones((1, 4), np.float32),), "executorch", tmp_path / "x")
    assert err.value.code == "reserved_module_name" and "rename the submodule 'meta'" in err.value.fix


def test_missing_function_lists_choices(tmp_path, capsys):
    assert main(["export", f"{USER_FILE}:nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "has no function 'nope'" in err and "audio_cnn" in err and "Traceback" not in err
