"""Linear -> PReLU (rank-2 input) converts on every target with parity, and stores W once; a forced
converter failure names the converter's own cause, the failing layer and an option that works."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("executorch")

from edgekit.errors import EdgekitError  # noqa: E402
from edgekit.exporters.pipeline import export_model  # noqa: E402


class LinearPReLU(torch.nn.Module):
    """Conv -> PReLU (rank 4) then, inside a ModuleList, Linear -> PReLU (rank 2): MTCNN's pattern."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3)
        self.act = torch.nn.PReLU(8)
        self.head = torch.nn.ModuleList([torch.nn.Linear(8 * 6 * 6, 64), torch.nn.PReLU(64), torch.nn.Linear(64, 5)])
        with torch.no_grad():  # distinct per-channel slopes: the case Core ML's prelu rejects
            self.head[1].weight.copy_(torch.linspace(0.05, 0.6, 64))

    def forward(self, x):
        x = self.act(self.conv(x)).flatten(1)
        return self.head[2](self.head[1](self.head[0](x)))


EXAMPLE = (np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32),)


@pytest.mark.export
@pytest.mark.parametrize("target", ["onnx", "tflite", "executorch", "coreml"])
def test_linear_prelu_exports_with_parity_and_one_weight_copy(tmp_path, target):
    art = export_model(LinearPReLU().eval(), EXAMPLE, target, tmp_path / target, show_progress=False,
                       parity_samples=8)
    parity = art.manifest["parity"]
    assert parity["ok"], parity
    if parity["mode"] == "numeric":
        assert parity["metrics"]["cosine_min"] > 0.99999
    stored = art.manifest["compression"]["file"]
    # every weight tensor in the file is a layer's, and the Linear before PReLU is stored once (no -W copy)
    assert stored["matched_bytes"] == stored["weight_bytes"] > 0
    assert stored["duplicated_layers"] == []
    width = 2 if target == "coreml" else 4
    assert stored["layer_bytes"]["head.0"] == 8 * 6 * 6 * 64 * width


@contextlib.contextmanager
def _no_rewrites(model):
    yield []


@pytest.mark.export
def test_forced_xnnpack_failure_names_cause_layer_and_working_option(tmp_path, monkeypatch):
    import edgekit.exporters.pipeline as pipeline

    monkeypatch.setattr(pipeline, "export_rewrites", _no_rewrites)  # the converter sees the raw rank-2 prelu
    out = tmp_path / "m" / "executorch"
    with pytest.raises(EdgekitError) as info:
        export_model(LinearPReLU().eval(), EXAMPLE, "executorch", out, show_progress=False, parity_samples=2)
    err = info.value
    assert "Attempting to convert non-NHWC compatible node to NHWC" in err.message  # XNNPACK's own words
    assert "'head.1'" in err.message  # the layer that failed, through the ModuleList
    assert "--executorch-delegate none" in err.fix
    log = tmp_path / "m" / "executorch.details.log"
    assert log.is_file() and str(log) in err.fix
    assert "ChannelsLastTaggedReshapePass" in log.read_text() and "Traceback" in log.read_text()
    assert not out.exists()
    # the suggestion works: the same graph without the XNNPACK delegate converts with parity
    art = export_model(LinearPReLU().eval(), EXAMPLE, "executorch", out, show_progress=False, parity_samples=4,
                       options={"delegate": "none"})
    assert art.manifest["parity"]["ok"]
    assert not log.exists()  # a later success removes the stale failure log


@pytest.mark.export
def test_forced_coreml_failure_names_the_layer_that_failed(tmp_path, monkeypatch):
    import edgekit.exporters.pipeline as pipeline

    monkeypatch.setattr(pipeline, "export_rewrites", _no_rewrites)
    with pytest.raises(EdgekitError) as info:
        export_model(LinearPReLU().eval(), EXAMPLE, "coreml", tmp_path / "m" / "coreml", show_progress=False)
    err = info.value
    assert "rank 3 or rank 5" in err.message  # coremltools' own reason
    assert "'head.1'" in err.message and "'act'" not in err.message  # not the first prelu of the graph
