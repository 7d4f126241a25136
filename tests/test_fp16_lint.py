"""fp16 lint for Core ML on Linux: the BERT mask pattern ``(1 - mask) * finfo(float32).min`` is caught
(NaN in fp16) and fixed, and a real activation overflow fails the export naming its layer."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgekit.errors import EdgekitError  # noqa: E402


class MaskedEncoder(torch.nn.Module):
    """One self-attention block with the classic BERT extended attention mask."""

    def __init__(self, vocab: int = 50, dim: int = 32):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(vocab, dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.out = torch.nn.Linear(dim, dim)

    def forward(self, ids, mask):
        x = self.embed(ids)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        ext = (1.0 - mask[:, None, :]) * torch.finfo(torch.float32).min  # -inf in fp16; 0 * -inf = NaN
        scores = q @ k.transpose(-1, -2) / 32 ** 0.5 + ext
        return self.out(torch.softmax(scores, dim=-1) @ v)


def _inputs():
    ids = torch.tensor([[3, 7, 11, 2, 0, 0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0, 0.0]])
    return ids, mask


def test_mask_pattern_turns_nan_in_fp16_and_the_lint_names_the_op():
    from edgekit.exporters.coreml.fp16_lint import simulate

    program = torch.export.export(MaskedEncoder().eval(), _inputs()).run_decompositions({})
    sim = simulate(program, _inputs())
    assert sim["outputs"][0]["finite"] is False
    first = sim["first_nonfinite"]
    assert first["op"] == "aten.mul" and first["nan"] is True  # (1 - mask) * -inf: 0 * -inf = NaN


def test_sentinel_rewrite_gives_finite_fp16_outputs_equal_to_fp32():
    from edgekit.exporters.coreml.fp16_lint import fp16_guard

    model = MaskedEncoder().eval()
    program = torch.export.export(model, _inputs()).run_decompositions({})
    report = fp16_guard(program, _inputs())
    assert [c["op"] for c in report["rewritten_constants"]] == ["aten.mul"]
    assert report["rewritten_constants"][0]["value"] == float(torch.finfo(torch.float32).min)
    out = report["simulation"]["outputs"][0]
    assert out["finite"] and out["cosine_to_fp32"] > 0.999
    # the rewritten fp32 program still computes what the model computes (masked keys get weight 0 either way)
    ref = model(*_inputs())
    got = program.module()(*_inputs())
    assert torch.allclose(ref, got, atol=1e-6)


class Overflowing(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.big = torch.nn.Linear(8, 8)
        with torch.no_grad():
            self.big.weight.fill_(5e4)

    def forward(self, x):
        return torch.tanh(self.big(x) - self.big(x).mean())


def test_activation_overflow_fails_the_export_naming_the_layer():
    from edgekit.exporters.coreml.fp16_lint import fp16_guard

    x = (torch.ones(1, 8),)
    program = torch.export.export(Overflowing().eval(), x).run_decompositions({})
    with pytest.raises(EdgekitError) as info:
        fp16_guard(program, x)
    assert info.value.code == "fp16_overflow"
    assert "'big'" in info.value.message and "--coreml-precision fp32" in info.value.fix


@pytest.mark.export
def test_coreml_fp16_export_of_masked_encoder_records_the_fix(tmp_path):
    pytest.importorskip("coremltools")
    from edgekit.exporters.pipeline import export_model

    ids, mask = _inputs()
    art = export_model(MaskedEncoder().eval(), (ids.numpy(), mask.numpy()), "coreml", tmp_path / "coreml",
                       show_progress=False)
    lint = art.manifest["target_info"]["fp16_lint"]
    assert lint["rewritten_constants"] and lint["simulation"]["outputs"][0]["finite"]
    assert np.isfinite(lint["simulation"]["outputs"][0]["cosine_to_fp32"])
